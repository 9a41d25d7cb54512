"""The operator pages' HTML frame: one small stylesheet, escaping, and safe headers.

Pages are plain server-rendered HTML, no script: what they show comes from the store,
GitHub or the operator's request, so every value goes through `e()`.
"""

from __future__ import annotations

import html
from collections.abc import Mapping

from starlette.responses import HTMLResponse

STYLE = """
body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;
color:#1f2328}
h1{font-size:1.6rem}code,pre{background:#f6f8fa;border-radius:6px;padding:.1rem .3rem}
pre{padding:.8rem;overflow:auto;font-size:.85rem}
button,.button{font:inherit;background:#1f883d;color:#fff;border:0;border-radius:6px;
padding:.6rem 1.2rem;cursor:pointer;text-decoration:none;display:inline-block}
.secondary{background:#6e7781}
.warn{background:#fff8c5;border:1px solid #d4a72c;padding:.6rem;border-radius:6px}
.error{background:#ffebe9;border:1px solid #ff8182;padding:.6rem;border-radius:6px}
table{border-collapse:collapse}td,th{padding:.2rem .8rem .2rem 0;text-align:left;
vertical-align:top}small{color:#656d76}
"""


def e(value: object) -> str:
    """`value` as HTML text or attribute."""
    return html.escape(str(value), quote=True)


def page(
    title: str,
    body: str,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    text = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<meta name="robots" content="noindex"><title>{e(title)}</title>'
        f"<style>{STYLE}</style></head><body>{body}</body></html>"
    )
    return HTMLResponse(
        text,
        status_code=status_code,
        headers={
            "Cache-Control": "no-store",
            "X-Frame-Options": "DENY",
            # A token in the address bar must not leave with a link's Referer.
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
            **(headers or {}),
        },
    )
