"""`messages.render` and the helpers that keep other people's words inert (pure)."""

from __future__ import annotations

import re

import pytest

from bot import messages
from bot.commands import Problem
from bot.ports import SessionRecord
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
