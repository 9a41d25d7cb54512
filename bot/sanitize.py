"""Hidden text out of what people write, before it reaches an agent's prompt.

Issue text is untrusted. Instructions hidden where a maintainer reading the issue
cannot see them (HTML comments, zero-width and bidi characters, Unicode tag
characters, link reference definitions nothing uses, such as `[//]: # (...)`) are
removed; visible text, links and images are kept. Text a reader sees only on request
(image alt text, a collapsed `<details>` block) is kept but marked (`mark`), so the
agent knows a maintainer may not have read it.

The other way round, words from elsewhere (a sender's command values, a platform's error)
shown in the app's own comments go through `code`: one inert span that cannot render.
"""

from __future__ import annotations

import re
import unicodedata

_WHITESPACE = re.compile(r"\s+")
_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)
# Zero-width, joiners, word joiner, invisible operators, BOM, soft hyphen, Mongolian
# vowel separator, bidi embeddings/overrides/isolates, and the Unicode tag block.
_HIDDEN = re.compile(
    "[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\U000e0000-\U000e007f]"
)
# Details blocks and <img alt> are visible to readers; what is not visible is text the
# renderer drops: comments (above) and tags that render nothing.
_INVISIBLE_TAGS = re.compile(
    r"<(script|style|template)\b[^>]*>.*?(?:</\1\s*>|\Z)", re.DOTALL | re.IGNORECASE
)


# A link reference definition renders nothing; `[//]: # (text)` is the usual way to hide
# a comment in Markdown. Its title (the part in quotes or brackets) is never shown.
_REFERENCE = re.compile(
    r"""^[ ]{0,3}\[(?P<label>[^\]\n]{1,200})\]:[ \t]*(?P<dest><[^>\n]*>|\S+)"""
    r"""(?:[ \t]+(?:"[^"\n]*"|'[^'\n]*'|\([^)\n]*\)))?[ \t]*(?:\n|\Z)""",
    re.MULTILINE,
)


def _references(text: str) -> str:
    """Definitions nothing refers to removed; the titles of the others removed."""
    rest = _REFERENCE.sub("", text)

    def keep(match: re.Match[str]) -> str:
        label = re.escape(match["label"])
        used = re.search(rf"\[{label}\](?![:(])", rest, re.IGNORECASE)
        if not used:
            return ""
        end = "\n" if match[0].endswith("\n") else ""
        return f"[{match['label']}]: {match['dest']}{end}"

    return _REFERENCE.sub(keep, text)


def clean(text: str) -> str:
    """`text` without HTML comments and invisible characters."""
    # Removing one comment can join the halves of another ("<!<!---->-- x -->"):
    # repeat until nothing changes.
    while True:
        before = text
        text = _HTML_COMMENT.sub("", text)
        text = _INVISIBLE_TAGS.sub("", text)
        text = _references(text)
        # Other format characters (category Cf) are invisible too; control characters
        # other than newline and tab have no business in a prompt.
        text = "".join(
            ch
            for ch in _HIDDEN.sub("", text)
            if ch in "\n\t" or unicodedata.category(ch) not in ("Cf", "Cc", "Co", "Cs")
        )
        if text == before:
            return text


def is_clean(text: str) -> bool:
    return clean(text) == text


_IMAGE = re.compile(r"!\[(?P<alt>[^\]\n]*)\]\(")
_IMG_ALT = re.compile(r"(<img\b[^>]*?\balt\s*=\s*)([\"'])", re.IGNORECASE)
_DETAILS = re.compile(r"<details\b[^>]*>", re.IGNORECASE)
_DETAILS_END = re.compile(r"</details\s*>", re.IGNORECASE)
ALT = "alt text, not shown to readers: "
COLLAPSED = "[collapsed section: readers see only its summary until they open it]"
COLLAPSED_END = "[end of collapsed section]"


def mark(text: str) -> str:
    """`text` (already `clean`) with the parts a reader does not see at a glance marked:
    image alt text and collapsed `<details>` blocks."""
    text = _IMAGE.sub(lambda m: f"![{ALT}{m['alt']}](" if m["alt"].strip() else m[0], text)
    text = _IMG_ALT.sub(lambda m: f"{m[1]}{m[2]}{ALT}", text)
    text = _DETAILS.sub(lambda m: f"{m[0]}\n{COLLAPSED}\n", text)
    return _DETAILS_END.sub(lambda m: f"\n{COLLAPSED_END}\n{m[0]}", text)


def code(text: str, limit: int = 100) -> str:
    """`text` as one inert span of inline code: on one line (a blank line would end the
    span and let the rest render), without backticks (which would close it), cut to
    `limit` characters."""
    flat = _WHITESPACE.sub(" ", text.replace("`", "'")).strip()
    if len(flat) > limit:
        flat = flat[: limit - 1].rstrip() + "…"
    return f"`{flat}`" if flat else "`(empty)`"
