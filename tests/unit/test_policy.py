"""`policy.trigger` and `policy.decide` with plain values (pure)."""

from __future__ import annotations

import pytest

from bot import policy
from bot.commands import Command
from bot.events import Comment, CommentEvent, Issue, IssueEvent, Repository, User, lock_key
from bot.messages import MARKER
from bot.ports import SessionRecord
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


def test_bad_command_arguments_get_the_usage() -> None:
    result = policy.trigger(commented("/tembo colour=red"), RepoConfig())
    assert isinstance(result, policy.Reply)
    assert "unknown key `colour`" in result.body and MARKER in result.body


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
    assert "https://app.tembo.io/sessions/s1" in result.body and "/tembo new" in result.body


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
    assert isinstance(result, policy.Reply) and "unknown platform" in result.body


def test_help_shows_usage_and_effective_config() -> None:
    result = policy.decide(found("/tembo help"), RepoConfig(label="agent"), policy.Facts("write"))
    assert isinstance(result, policy.Reply)
    assert "label: agent" in result.body and "key=value" in result.body


def test_status_lists_sessions() -> None:
    result = policy.decide(
        found("/tembo status"), RepoConfig(), policy.Facts("write", (record(60),), NOW)
    )
    assert isinstance(result, policy.Reply) and "sessions/s1" in result.body


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
    assert policy.worth_queueing(event, payload) is expected


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
