"""`policy.trigger` and `policy.decide` with plain values (pure)."""

from __future__ import annotations

import dataclasses

import pytest

from bot import config_words, messages, policy, replies
from bot.commands import Command, Problem
from bot.events import Comment, CommentEvent, Issue, IssueEvent, Repository, User, lock_key
from bot.messages import MARKER
from bot.ports import SessionRecord, SessionView
from bot.repo_config import RepoConfig

REPO = Repository(
    "acme/web", "https://github.com/acme/web", "https://github.com/acme/web.git", "main"
)
ISSUE = Issue(7, "Bug", "", "https://github.com/acme/web/issues/7", User("alice"), ("tembo",))
NOW = 1_800_000_000.0
ALICE = User("alice")


def labeled(label: str = "tembo", sender: User = ALICE) -> IssueEvent:
    return IssueEvent("labeled", ISSUE, REPO, sender, 1, label)


def commented(body: str, sender: User = ALICE, pr: bool = False) -> CommentEvent:
    issue = Issue(7, "Bug", "", ISSUE.html_url, User("alice"), is_pull_request=pr)
    return CommentEvent("created", issue, Comment(99, body, sender), REPO, sender, 1)


@pytest.mark.parametrize(
    ("event", "config", "reason"),
    [
        (labeled("bug"), RepoConfig(), "label 'bug'"),
        (labeled("tembo"), RepoConfig(label="agent"), "label 'tembo'"),
        (labeled(sender=User("ci[bot]", "Bot")), RepoConfig(), "not in allow_bots"),
        (commented("/tembo go", User("ci[bot]", "Bot")), RepoConfig(), "not in allow_bots"),
        (commented(f"/tembo go {MARKER}"), RepoConfig(), "own comment"),
        (commented("/tembo go", pr=True), RepoConfig(), "pull request"),
        (commented("hello"), RepoConfig(), "no command"),
        (commented("/tembo go"), RepoConfig(command="/agent"), "no command"),
    ],
)
def test_trigger_ignores(event: IssueEvent | CommentEvent, config: RepoConfig, reason: str) -> None:
    result = policy.trigger(event, config)
    assert isinstance(result, policy.Ignore)
    assert reason in result.reason


def test_allowed_bots_and_pull_requests_when_configured() -> None:
    config = RepoConfig(allow_bots=("ci[bot]",), pull_requests=True)
    assert isinstance(
        policy.trigger(commented("/tembo go", User("ci[bot]", "Bot"), pr=True), config),
        policy.Trigger,
    )


def test_opened_with_the_label_triggers() -> None:
    event = IssueEvent("opened", ISSUE, REPO, User("alice"), 1)
    assert isinstance(policy.trigger(event, RepoConfig()), policy.Trigger)


def test_a_bad_command_is_a_trigger_carrying_its_problem_not_a_reply() -> None:
    result = policy.trigger(commented("/tembo colour=red"), RepoConfig())
    assert isinstance(result, policy.Trigger)
    assert result.problem == Problem("unknown_key", "colour")


@pytest.mark.parametrize(
    ("permission", "kind", "once"),
    [
        ("none", "denied", "denied:alice"),
        ("read", "denied", "denied:alice"),
        ("triage", "denied", "denied:alice"),
        ("write", "usage", None),
        ("admin", "usage", None),
    ],
)
def test_permission_is_checked_before_a_bad_command_is_answered(
    permission: str, kind: str, once: str | None
) -> None:
    bad = policy.trigger(commented('/tembo new="![x](https://evil.test/a.png) @all"'), RepoConfig())
    assert isinstance(bad, policy.Trigger)
    result = policy.decide(bad, RepoConfig(), policy.Facts(permission, now=NOW))
    assert isinstance(result, policy.Reply)
    assert (result.kind, result.once) == (kind, once)


def test_below_write_a_senders_refusals_are_said_once_per_issue() -> None:
    bad = policy.trigger(commented("/tembo colour=red"), RepoConfig())
    assert isinstance(bad, policy.Trigger)
    result = policy.decide(bad, RepoConfig(min_permission="read"), policy.Facts("read", now=NOW))
    assert isinstance(result, policy.Reply)
    assert (result.kind, result.once) == ("usage", "refused:alice")


def found(body: str = "/tembo go") -> policy.Trigger:
    result = policy.trigger(commented(body), RepoConfig())
    assert isinstance(result, policy.Trigger)
    return result


@pytest.mark.parametrize(
    ("permission", "minimum", "allowed"),
    [
        ("none", "read", False),
        ("read", "read", True),
        ("read", "write", False),
        ("triage", "write", False),
        ("triage", "triage", True),
        ("write", "write", True),
        ("maintain", "write", True),
        ("admin", "maintain", True),
        ("write", "admin", False),
        ("weird", "read", False),
    ],
)
def test_permission_gate(permission: str, minimum: str, allowed: bool) -> None:
    config = RepoConfig(min_permission=minimum)
    result = policy.decide(found(), config, policy.Facts(permission=permission, now=NOW))
    assert isinstance(result, policy.Dispatch) is allowed
    if not allowed:
        assert isinstance(result, policy.Reply) and result.once == "denied:alice"


def record(age: float) -> SessionRecord:
    return SessionRecord(
        "d", "acme/web", 7, "tembo", "s1", "https://app.tembo.io/sessions/s1", NOW - age
    )


def test_a_live_session_is_linked_instead_of_a_second_one() -> None:
    result = policy.decide(found(), RepoConfig(), policy.Facts("write", (record(60),), NOW))
    assert isinstance(result, policy.Reply)
    assert result.said == replies.Existing(record(60), "/tembo")
    body = messages.render(result)
    assert "https://app.tembo.io/sessions/s1" in body and "/tembo new" in body


def dry_run_record(age: float) -> SessionRecord:
    return SessionRecord("d", "acme/web", 7, "dry-run", "dry-run-d", "", NOW - age, "dry-run")


def test_a_dry_run_is_not_a_session_to_stop_or_message() -> None:
    """A dry run started nothing: `/tembo stop` finds nothing running, and a command
    with text dispatches again instead of pointing at a session that does not exist."""
    facts = policy.Facts("write", (dry_run_record(60),), NOW, frozenset({"tembo"}))
    stopped = policy.decide(found("/tembo stop"), RepoConfig(), facts)
    assert isinstance(stopped, policy.Reply) and stopped.said == replies.NothingToStop()
    again = policy.decide(found("/tembo also the Safari case"), RepoConfig(), facts)
    assert isinstance(again, policy.Dispatch)


@pytest.mark.parametrize(
    ("body", "config", "age"),
    [
        ("/tembo new go", RepoConfig(), 60),
        ("/tembo go", RepoConfig(one_session_per_issue=False), 60),
        ("/tembo go", RepoConfig(), 25 * 3600),
    ],
)
def test_new_sessions_when_forced_disabled_or_old(
    body: str, config: RepoConfig, age: float
) -> None:
    result = policy.decide(found(body), config, policy.Facts("write", (record(age),), NOW))
    assert isinstance(result, policy.Dispatch)


def test_command_arguments_choose_platform_and_agent() -> None:
    result = policy.decide(
        found("/tembo platform=dry-run agent=x go"),
        RepoConfig(agent="y"),
        policy.Facts("write", (), NOW),
    )
    assert isinstance(result, policy.Dispatch)
    assert (result.platform, result.agent) == ("dry-run", "x")


def test_unknown_platform_is_answered() -> None:
    result = policy.decide(found("/tembo platform=openai"), RepoConfig(), policy.Facts("write"))
    assert isinstance(result, policy.Reply)
    assert result.said == replies.UnknownPlatform("/tembo", "openai")
    assert "unknown platform `openai`" in messages.render(result)


def test_help_shows_usage_and_effective_config() -> None:
    result = policy.decide(found("/tembo help"), RepoConfig(label="agent"), policy.Facts("write"))
    assert isinstance(result, policy.Reply) and result.kind == "help"
    body = messages.render(result)
    assert "label: agent" in body and "key=value" in body


def test_status_lists_sessions() -> None:
    result = policy.decide(
        found("/tembo status"), RepoConfig(), policy.Facts("write", (record(60),), NOW)
    )
    assert isinstance(result, policy.Reply) and result.kind == "status"
    assert "sessions/s1" in messages.render(result)


@pytest.mark.parametrize(
    ("event", "payload", "expected"),
    [
        ("issues", {"action": "labeled"}, True),
        ("issues", {"action": "opened", "issue": {"labels": []}}, False),
        ("issues", {"action": "opened", "issue": {"labels": [{"name": "x"}]}}, True),
        ("issues", {"action": "closed"}, False),
        ("issue_comment", {"action": "created", "comment": {"body": "/x"}}, True),
        ("issue_comment", {"action": "created", "comment": {"body": "thanks!"}}, False),
        ("issue_comment", {"action": "created", "comment": {"body": f"/x {MARKER}"}}, False),
        ("issue_comment", {"action": "edited", "comment": {"body": "/x"}}, False),
        ("issue_comment", {"action": "created", "comment": None}, False),
        ("installation", {"action": "created"}, True),
        ("ping", {"zen": "hi"}, False),
        ("push", {}, False),
    ],
)
def test_worth_queueing(event: str, payload: dict[str, object], expected: bool) -> None:
    assert config_words.worth_queueing(event, payload) is expected


def test_command_object_is_passed_through() -> None:
    assert found("/tembo branch=x go").command == Command(text="go", args={"branch": "x"})


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"repository": True, "issue": {"number": 1}},
        {"repository": {"full_name": "a/b"}, "issue": []},
        {"repository": {"full_name": 3}, "issue": {"number": "1"}},
    ],
)
def test_lock_key_of_a_malformed_payload_is_none(payload: dict[str, object]) -> None:
    assert lock_key(payload) is None


def test_lock_key_is_the_issue() -> None:
    assert lock_key({"repository": {"full_name": "a/b"}, "issue": {"number": 7}}) == "a/b#7"


def closed(reason: str | None, sender: User = ALICE) -> IssueEvent:
    issue = Issue(7, "Bug", "", ISSUE.html_url, User("alice"), state_reason=reason)
    return IssueEvent("closed", issue, REPO, sender, 1)


def found_close(reason: str = "not_planned") -> policy.Trigger:
    result = policy.trigger(closed(reason), RepoConfig())
    assert isinstance(result, policy.Trigger)
    return result


@pytest.mark.parametrize("reason", ["completed", None, "reopened"])
def test_closing_other_than_not_planned_is_ignored(reason: str | None) -> None:
    assert isinstance(policy.trigger(closed(reason), RepoConfig()), policy.Ignore)


def test_closing_as_not_planned_stops_the_live_sessions_only() -> None:
    live, old = record(60), record(25 * 3600)
    ended = dataclasses.replace(record(30), dispatch_id="e", status="finished")
    facts = policy.Facts("write", (old, live, ended), NOW)
    result = policy.decide(found_close(), RepoConfig(), facts)
    assert result == policy.Stop(found_close(), (live,))


def test_closing_as_not_planned_without_a_live_session_is_ignored() -> None:
    result = policy.decide(found_close(), RepoConfig(), policy.Facts("write", (), NOW))
    assert isinstance(result, policy.Ignore)


def test_closing_without_the_permission_is_ignored_without_a_reply() -> None:
    result = policy.decide(found_close(), RepoConfig(), policy.Facts("read", (record(60),), NOW))
    assert isinstance(result, policy.Ignore)


def test_stop_command_stops_every_live_session() -> None:
    one, two = record(60), dataclasses.replace(record(30), dispatch_id="d2")
    result = policy.decide(
        found("/tembo stop"), RepoConfig(), policy.Facts("write", (one, two), NOW)
    )
    assert isinstance(result, policy.Stop) and result.sessions == (one, two)


def test_stop_command_without_a_live_session_is_answered() -> None:
    result = policy.decide(found("/tembo stop"), RepoConfig(), policy.Facts("write", (), NOW))
    assert isinstance(result, policy.Reply)


def test_text_for_a_running_session_that_takes_messages_is_a_follow_up() -> None:
    running = record(60)
    facts = policy.Facts("write", (running,), NOW, messageable=frozenset({"tembo"}))
    result = policy.decide(found("/tembo also fix the docs"), RepoConfig(), facts)
    assert result == policy.FollowUp(found("/tembo also fix the docs"), (running,))


def test_text_after_a_fan_out_goes_to_each_of_its_running_sessions_that_takes_messages() -> None:
    tembo, devin, magnet = fanned("tembo", age=62), fanned("devin", age=61), fanned("magnet")
    ended = dataclasses.replace(fanned("agen"), status="finished")
    older = fanned("tembo", group="gh-0", age=3000)  # an earlier fan-out of the issue
    facts = policy.Facts(
        "write",
        (older, tembo, devin, ended, magnet),
        NOW,
        messageable=frozenset({"tembo", "devin", "agen"}),
    )
    result = policy.decide(found("/tembo also fix the docs"), RepoConfig(), facts)
    assert result == policy.FollowUp(found("/tembo also fix the docs"), (tembo, devin), (magnet,))


def test_a_fan_out_whose_sessions_take_no_messages_is_linked_instead() -> None:
    facts = policy.Facts(
        "write", (fanned("magnet", age=61), fanned("jules")), NOW, messageable=frozenset()
    )
    result = policy.decide(found("/tembo also fix the docs"), RepoConfig(), facts)
    assert isinstance(result, policy.Reply)


@pytest.mark.parametrize(
    ("body", "messageable"),
    [
        ("/tembo also fix the docs", frozenset()),  # the platform takes no messages
        ("/tembo", frozenset({"tembo"})),  # no text to send
    ],
)
def test_no_follow_up_without_text_or_a_platform_that_takes_it(
    body: str, messageable: frozenset[str]
) -> None:
    facts = policy.Facts("write", (record(60),), NOW, messageable=messageable)
    assert isinstance(policy.decide(found(body), RepoConfig(), facts), policy.Reply)


@pytest.mark.parametrize(
    ("body", "config", "platform", "fanout"),
    [
        ("/tembo platform=tembo,jules go", RepoConfig(), "tembo", ("tembo", "jules")),
        ("/tembo platform=devin,devin go", RepoConfig(), "devin", ()),
        ("/tembo go", RepoConfig(platform=("agen", "devin")), "agen", ("agen", "devin")),
        ("/tembo platform=agen go", RepoConfig(platform=("tembo", "devin")), "agen", ()),
        ("/tembo go", RepoConfig(), "tembo", ()),
    ],
)
def test_a_list_of_platforms_fans_out_and_one_platform_does_not(
    body: str, config: RepoConfig, platform: str, fanout: tuple[str, ...]
) -> None:
    result = policy.decide(found(body), config, policy.Facts("write", (), NOW))
    assert isinstance(result, policy.Dispatch)
    assert (result.platform, result.fanout) == (platform, fanout)


def test_an_unknown_platform_in_a_list_is_answered() -> None:
    result = policy.decide(
        found("/tembo platform=tembo,openai"), RepoConfig(), policy.Facts("write")
    )
    assert isinstance(result, policy.Reply)
    assert result.said == replies.UnknownPlatform("/tembo", "openai")


def fanned(platform: str, group: str = "gh-1", age: float = 60) -> SessionRecord:
    view = SessionView(platform, group=group, fanout=("tembo", "devin", "jules"))
    return SessionRecord(
        f"{group}-{platform}", "acme/web", 7, platform, f"s-{platform}", "", NOW - age, view=view
    )


def test_pick_keeps_the_newest_fan_outs_session_and_names_the_others() -> None:
    older = fanned("devin", group="gh-0", age=600)
    sessions = (older, fanned("tembo"), fanned("devin"), fanned("jules"), record(30))
    result = policy.decide(
        found("/tembo pick devin"), RepoConfig(), policy.Facts("write", sessions, NOW)
    )
    assert isinstance(result, policy.Pick)
    assert result.winner.dispatch_id == "gh-1-devin"
    assert [r.dispatch_id for r in result.others] == ["gh-1-tembo", "gh-1-jules"]


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ("/tembo pick devin", replies.NothingToPick("devin")),
        ("/tembo pick openai", replies.UnknownPlatform("/tembo", "openai")),
    ],
)
def test_pick_without_a_fan_out_or_a_known_platform_is_answered(
    body: str, said: replies.Said
) -> None:
    result = policy.decide(found(body), RepoConfig(), policy.Facts("write", (record(30),), NOW))
    assert isinstance(result, policy.Reply) and result.said == said
    assert messages.MARKER in messages.render(result)


def test_pick_needs_the_permission_to_dispatch() -> None:
    sessions = (fanned("tembo"), fanned("devin"))
    result = policy.decide(
        found("/tembo pick devin"), RepoConfig(), policy.Facts("read", sessions, NOW)
    )
    assert isinstance(result, policy.Reply) and result.kind == "denied"
