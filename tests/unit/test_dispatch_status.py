"""A dispatch's status comment (`dispatch_status`): links, the look-up of the app's own
comment, and a fan-out's table (pure)."""

from __future__ import annotations

import re

import pytest

from bot import dispatch_status
from bot.events import Comment, User
from bot.messages import MARKER, dispatch_marker
from bot.ports import SessionView

CODE_SPAN = re.compile(r"`[^`\n]*`")
HOSTILE = "`![x](https://evil.test/p.png)`\n\n@everyone <img src=x> [a](javascript:x)"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://github.com/acme/web/pull/3", "https://github.com/acme/web/pull/3"),
        ("![x](https://evil.test/p.png)", "`![x](https://evil.test/p.png)`"),
        ("javascript:alert(1)", "`javascript:alert(1)`"),
    ],
)
def test_a_platforms_link_is_a_bare_https_url_or_inert(url: str, shown: str) -> None:
    assert dispatch_status.link(url) == shown


BAIT = f"{MARKER}\n{dispatch_marker('gh-1')}\nlooks like ours"


@pytest.mark.parametrize(
    ("comments", "found"),
    [
        ([Comment(1, BAIT, User("mallory"))], None),
        ([Comment(1, BAIT, User("mallory")), Comment(2, BAIT, User("app[bot]", "Bot"))], 2),
        ([Comment(3, f"{MARKER}\nno id", User("app[bot]", "Bot"))], None),
        ([Comment(4, BAIT.replace("gh-1", "gh-12"), User("app[bot]", "Bot"))], None),
    ],
)
def test_the_status_comment_is_looked_for_among_the_apps_own_only(
    comments: list[Comment], found: int | None
) -> None:
    assert dispatch_status.status_comment_id(comments, "gh-1", "app[bot]") == found


def test_a_fan_out_table_has_a_row_per_platform_and_keeps_reasons_inert() -> None:
    views = [
        SessionView(
            platform="tembo",
            url="https://app.tembo.io/s/1",
            phase="finished",
            pull_requests=("https://github.com/acme/web/pull/3",),
            started_at=1000.0,
            pr_at=1000.0 + 3 * 3600 + 7 * 60,
            branch="tembo/7-x-tembo",
            target="main",
        ),
        SessionView(platform="devin", url="https://app.devin.ai/s/2", phase="working", picked=True),
        SessionView(platform="jules", phase="refused", reason="a | b " + HOSTILE),
        SessionView(platform="agen", phase="starting"),
    ]
    body = dispatch_status.fanout_status(views, "gh-9")
    assert body.startswith(MARKER) and "<!-- dispatch-id: gh-9 -->" in body
    rows = [line for line in body.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[0] == "| platform | state | session | pull request | time to PR |"
    assert rows[1] == (
        "| Tembo | ✅ finished | https://app.tembo.io/s/1 | "
        "https://github.com/acme/web/pull/3 | 3 h 07 min |"
    )
    assert rows[2].startswith("| **Devin** 🏆 picked | 🛠️ working |")
    assert rows[3].startswith("| Jules | 😕 could not start `a / b ")
    assert rows[4] == "| Agen | ⏳ starting | — | — | — |"
    assert all(row.count(" | ") == 4 for row in rows)  # no reason breaks a cell
    assert "(`tembo/7-x-tembo`, …) → `main`" in body
    rendered = CODE_SPAN.sub("", body)
    for active in ("evil.test", "@everyone", "<img", "javascript:"):
        assert active not in rendered
