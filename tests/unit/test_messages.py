"""`messages.render` and the helpers that keep other people's words inert (pure)."""

from __future__ import annotations

import re

import pytest

from bot import messages
from bot.commands import Problem
from bot.events import Comment, User
from bot.ports import SessionRecord, SessionView
from bot.replies import (
    ConfigProblems,
    Denied,
    Existing,
    Help,
    NothingToPick,
    NothingToStop,
    Reply,
    Said,
    Status,
    UnknownPlatform,
    Usage,
)
from bot.repo_config import RepoConfig

CODE_SPAN = re.compile(r"`[^`\n]*`")
HOSTILE = "`![x](https://evil.test/p.png)`\n\n@everyone <img src=x> [a](javascript:x)"
RECORD = SessionRecord("gh-1", "acme/web", 7, "tembo", "s1", "https://app.tembo.io/s/s1", 0.0)


@pytest.mark.parametrize(
    ("said", "words"),
    [
        (Usage("/tembo", Problem("unknown_key", "colour")), "unknown key `colour`"),
        (Usage("/tembo", Problem("bad_bool", "new", "maybe")), "`new=maybe` must be true or false"),
        (Usage("/tembo", Problem("empty_value", "branch")), "`branch=` needs a value"),
        (Usage("/tembo", Problem("bad_ref", "branch", "a b")), "`branch=a b` is not a branch"),
        (Usage("/tembo", Problem("bad_agent", "agent", "a<b")), "`agent=a<b` is not an agent"),
        (UnknownPlatform("/tembo", "openai"), "unknown platform `openai`"),
        (Denied("mallory", "write"), "@mallory, only people with **write** access"),
        (Help(RepoConfig(label="agent")), "label: agent"),
        (Status((RECORD,), 0.0), "[s1](https://app.tembo.io/s/s1)"),
        (Status((), None), "No session has been started"),
        (Existing(RECORD, "/agent"), "Use `/agent new …`"),
        (NothingToStop(), "no running session on this issue to stop"),
        (NothingToPick("jules"), "no session on Jules in a fan-out on this issue to pick"),
        (Usage("/tembo", Problem("bad_pick", "pick", "a b")), "`pick` takes one platform name"),
        (
            Status((SessionRecord("gh-1-agen", "acme/web", 7, "agen", "", "", 0.0),), 0.0),
            "| — (could not start) | Agen |",
        ),
        (ConfigProblems(".github/tembo.yml", ("`label` (line 1): bad",)), "- `label` (line 1)"),
    ],
)
def test_every_reply_kind_is_worded_in_one_place_with_the_marker(said: Said, words: str) -> None:
    body = messages.render(Reply(said))
    assert words in body
    assert body.startswith(messages.MARKER)


@pytest.mark.parametrize(
    "said",
    [
        Usage("/tembo", Problem("bad_bool", "new", HOSTILE)),
        Usage("/tembo", Problem("bad_ref", "target", HOSTILE)),
        Usage("/tembo", Problem("bad_agent", "agent", HOSTILE)),
        Usage("/tembo", Problem("unknown_key", HOSTILE)),
        UnknownPlatform("/tembo", HOSTILE),
    ],
)
def test_a_senders_words_render_as_nothing_but_inline_code(said: Said) -> None:
    rendered = CODE_SPAN.sub("", messages.render(Reply(said)))
    for active in ("evil.test", "@everyone", "<img", "javascript:"):
        assert active not in rendered


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("plain", 100, "`plain`"),
        ("a `b` c", 100, "`a 'b' c`"),
        ("one\n\ntwo\r\nthree", 100, "`one two three`"),
        ("x" * 20, 10, "`xxxxxxxxx…`"),
        ("   ", 10, "`(empty)`"),
    ],
)
def test_code_is_one_line_without_backticks_and_bounded(
    text: str, limit: int, expected: str
) -> None:
    assert messages.code(text, limit) == expected


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://github.com/acme/web/pull/3", "https://github.com/acme/web/pull/3"),
        ("![x](https://evil.test/p.png)", "`![x](https://evil.test/p.png)`"),
        ("javascript:alert(1)", "`javascript:alert(1)`"),
    ],
)
def test_a_platforms_link_is_a_bare_https_url_or_inert(url: str, shown: str) -> None:
    assert messages.link(url) == shown


BAIT = f"{messages.MARKER}\n{messages.dispatch_marker('gh-1')}\nlooks like ours"


@pytest.mark.parametrize(
    ("comments", "found"),
    [
        ([Comment(1, BAIT, User("mallory"))], None),
        ([Comment(1, BAIT, User("mallory")), Comment(2, BAIT, User("app[bot]", "Bot"))], 2),
        ([Comment(3, f"{messages.MARKER}\nno id", User("app[bot]", "Bot"))], None),
        ([Comment(4, BAIT.replace("gh-1", "gh-12"), User("app[bot]", "Bot"))], None),
    ],
)
def test_the_status_comment_is_looked_for_among_the_apps_own_only(
    comments: list[Comment], found: int | None
) -> None:
    assert messages.status_comment_id(comments, "gh-1", "app[bot]") == found


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
    body = messages.fanout_status(views, "gh-9")
    assert body.startswith(messages.MARKER) and "<!-- dispatch-id: gh-9 -->" in body
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
