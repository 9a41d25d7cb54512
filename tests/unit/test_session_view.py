"""A session's view (what its status comment shows) is typed, and kept in the store as the
same JSON the untyped dict was: rows written before the type load, and rows written now
read the same to a process that has not been upgraded yet."""

from __future__ import annotations

import json

from bot import dispatch_status
from bot.events import Repository
from bot.ports import Session, SessionRequest, SessionView

# A `sessions.view` value as messages.session_view wrote it before SessionView, after a
# follow found a pull request (bot/actions/follow.py at 802a1f6).
STORED_BEFORE = json.dumps(
    {
        "platform": "tembo",
        "url": "https://app.tembo.io/sessions/s-1",
        "session_id": "s-1",
        "agent": None,
        "branch": "tembo/7-fix-login",
        "target": "main",
        "phase": "working",
        "pull_requests": ["https://github.com/octo/hello/pull/8"],
        "reason": "",
        "notes": ["Tembo answered 401; started on Agen instead"],
    }
)


def test_a_view_stored_before_the_type_loads_and_is_stored_back_unchanged() -> None:
    view = SessionView.from_json(json.loads(STORED_BEFORE))
    assert view.phase == "working"
    assert view.pull_requests == ("https://github.com/octo/hello/pull/8",)
    assert view.notes == ("Tembo answered 401; started on Agen instead",)
    assert view.to_json() == json.loads(STORED_BEFORE)


def test_a_partial_or_unknown_view_takes_defaults() -> None:
    assert SessionView.from_json({"agent": "a", "notes": [], "prs": ["x"]}) == SessionView(
        agent="a"
    )
    assert SessionView.from_json(None) == SessionView()
    assert SessionView.from_json({"phase": "exploded"}).phase == "started"


def test_a_new_sessions_view_carries_its_own_notes_then_the_dispatchs() -> None:
    session = Session(id="s-1", url="https://x/s-1", notes=("private repository",))
    request = SessionRequest(
        dispatch_id="gh-1",
        title="t",
        prompt="p",
        repository=Repository("octo/hello", "https://github.com/octo/hello", "", "main"),
        target_branch="main",
        branch_name="b",
    )
    view = dispatch_status.session_view(session, request, platform="recoup", notes=("fell back",))
    assert view.notes == ("private repository", "fell back")
    assert view.phase == "started"
    assert "- fell back" in dispatch_status.status_comment(view, "gh-1")
