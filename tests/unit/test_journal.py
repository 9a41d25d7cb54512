"""The job journal: typed, versioned, and still able to read rows written before it."""

from __future__ import annotations

import dataclasses
import json

import pytest

from bot.journal import VERSION, Journal, Pin, dump, load
from bot.ports import Session

# A delivery job's progress as the code before the typed journal wrote it (a dispatch
# interrupted after its create went out, with the status comment posted).
VERSION_1_DISPATCH = {
    "decision": {"kind": "dispatch", "platform": "tembo", "agent": "claudeCode:claude-opus-4-5"},
    "reacted": True,
    "status_comment_pending": True,
    "status_comment_id": 1234,
    "creates_unknown": 1,
    "first_sent_at": 1_800_000_000.5,
    "session": {
        "id": "s1",
        "url": "https://app.tembo.io/sessions/s1",
        "status": "",
        "preview": None,
    },
}


def test_a_version_1_dispatch_row_loads_with_every_step_it_recorded() -> None:
    journal = load(VERSION_1_DISPATCH)
    assert journal.pin == Pin("dispatch", platform="tembo", agent="claudeCode:claude-opus-4-5")
    assert (journal.reacted, journal.status_comment_id, journal.status_comment_pending) == (
        True,
        1234,
        True,
    )
    assert (journal.creates_unknown, journal.first_sent_at) == (1, 1_800_000_000.5)
    assert journal.session == Session("s1", "https://app.tembo.io/sessions/s1")
    assert journal.version == VERSION


@pytest.mark.parametrize(
    ("old", "pin"),
    [
        ({"kind": "follow_up", "session": "gh-1"}, Pin("follow_up", sessions=("gh-1",))),
        ({"kind": "stop", "sessions": ["gh-1", "gh-2"]}, Pin("stop", sessions=("gh-1", "gh-2"))),
        ({"platform": "agen", "agent": None}, Pin("dispatch", platform="agen")),
    ],
)
def test_version_1_pinned_decisions_load(old: dict[str, object], pin: Pin) -> None:
    assert load({"decision": old}).pin == pin


def test_version_1_follow_and_stop_rows_load() -> None:
    assert load({"polls": 3}).polls == 3
    journal = load({"reacted": True, "stopped": ["gh-1"], "told_unstoppable": True})
    assert journal.stopped == ("gh-1",) and journal.told_unstoppable


def test_an_empty_row_is_a_new_journal() -> None:
    assert load({}) == Journal()


def test_a_journal_survives_its_round_trip_through_json() -> None:
    journal = Journal(
        pin=Pin("stop", sessions=("gh-1",)),
        session=Session("s1", "https://x/s1", "queued"),
        platform_steps={"recoup.session": "abc"},
        stopped=("gh-1",),
        creates_unknown=2,
        create_failures=3,
        create_statuses=(503, None, 502),
    )
    assert load(dump(journal)) == journal


def test_a_row_from_before_create_failures_were_counted_loads_with_none_counted() -> None:
    journal = load({"version": 2, "pin": {"kind": "dispatch", "platform": "tembo"}})
    assert (journal.create_failures, journal.create_statuses) == (0, ())


def test_a_misspelt_field_is_refused_not_stored() -> None:
    with pytest.raises(TypeError):
        dataclasses.replace(Journal(), reactd=True)  # type: ignore[call-arg]


# A dispatch job's progress as version 2 (before fan-out) wrote it: a create sent, its
# answer lost, the status comment posted. Rows like this are in stores today.
VERSION_2_DISPATCH = {
    "version": 2,
    "pin": {"kind": "dispatch", "platform": "agen", "agent": None, "force": True, "sessions": []},
    "reacted": True,
    "reply_reacted": False,
    "replied": False,
    "status_comment_id": 99,
    "status_comment_pending": True,
    "creates_unknown": 1,
    "first_sent_at": 1_800_000_000.5,
    "session": None,
    "prompt_nonce": "0123456789abcdef",
    "platform_steps": {"agen.session": "ses_1"},
    "reported": False,
    "following": False,
    "message_sent": False,
    "stopped": [],
    "told_unstoppable": False,
    "polls": 0,
    "tried": ["tembo"],
    "fell_back": ["Tembo answered 401; started on Agen instead"],
}


def test_a_version_2_row_loads_as_a_single_platform_dispatch() -> None:
    journal = load(VERSION_2_DISPATCH)
    assert journal.pin == Pin("dispatch", platform="agen", force=True)
    assert (journal.creates_unknown, journal.status_comment_id) == (1, 99)
    assert journal.platform_steps == {"agen.session": "ses_1"}
    assert journal.tried == ("tembo",)
    assert journal.fanout == {} and journal.refused is None
    assert journal.version == VERSION == 3
    assert load(dump(journal)) == journal


def test_a_fan_out_journal_keeps_each_platforms_create_apart() -> None:
    journal = Journal(
        pin=Pin("dispatch", platform="tembo", platforms=("tembo", "devin", "jules")),
        reacted=True,
        status_comment_id=7,
        fanout={
            "tembo": Journal(session=Session("t1", "https://x/t1"), reported=True),
            "devin": Journal(creates_unknown=1, first_sent_at=5.0, prompt_nonce="n"),
            "jules": Journal(refused="401: bad key"),
        },
    )
    again = load(json.loads(json.dumps(dump(journal))))
    assert again == journal
    assert again.fanout["devin"].creates_unknown == 1
    assert again.fanout["tembo"].session == Session("t1", "https://x/t1")


def test_a_follow_up_sent_before_messaged_was_kept_per_session_is_not_sent_again() -> None:
    row = {"version": 3, "pin": {"kind": "follow_up", "sessions": ["gh-1"]}, "message_sent": True}
    assert load(row).messaged == ("gh-1",)
    unsent = {**row, "message_sent": False}
    assert load(unsent).messaged == ()
    journal = Journal(pin=Pin("follow_up", sessions=("a", "b")), messaged=("b",))
    assert load(json.loads(json.dumps(dump(journal)))) == journal
