"""Budgets as plain values: the `limits:` key, `force=true`, and which limit a dispatch
would break (bot.fleet, bot.repo_config, bot.commands, bot.policy)."""

from __future__ import annotations

import pytest

from bot import fleet, policy
from bot.actions.limits import spent_words
from bot.commands import CommandError, Problem, parse
from bot.events import Comment, CommentEvent, Issue, Repository, User
from bot.repo_config import ConfigError, RepoConfig, merge, parse_layer

DAY0 = 1_800_000_000.0 - 1_800_000_000.0 % fleet.DAY
REPO = Repository("acme/web", "https://github.com/acme/web", "", "main")
ISSUE = Issue(7, "Bug", "", "https://github.com/acme/web/issues/7", User("alice"), ("tembo",))


def test_limits_merge_key_by_key_repo_over_org_over_operator() -> None:
    operator = RepoConfig(limits=fleet.Limits(per_org_per_day=100, per_user_per_day=10))
    org = parse_layer("limits:\n  per_user_per_day: 5\n  per_repo_per_day: 20\n", "org")
    repo = parse_layer("limits:\n  per_repo_per_day: 3\n  per_org_per_day: null\n", "repo")
    assert merge(operator, org, repo).limits == fleet.Limits(
        per_user_per_day=5, per_repo_per_day=3, per_org_per_day=None
    )
    assert merge(operator).limits == operator.limits


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("limits: 5", "must be a mapping"),
        ("limits:\n  per_week: 5", "unknown limit 'per_week'"),
        ("limits:\n  per_user_per_day: -1", "whole number"),
        ("limits:\n  per_user_per_day: true", "whole number"),
        ("limits:\n  concurrent_per_repo: 2.5", "whole number"),
    ],
)
def test_bad_limits_are_reported_with_the_line(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_layer(text, "repo")
    [found] = caught.value.problems
    assert found.key == "limits" and found.line == 1 and problem in found.message


def test_force_is_a_boolean_key_of_the_command() -> None:
    command = parse("/tembo new force=true fix it")
    assert command is not None and command.force and command.new and command.text == "fix it"
    plain = parse("/tembo fix it")
    assert plain is not None and not plain.force
    with pytest.raises(CommandError) as refused:
        parse("/tembo force=maybe")
    assert refused.value.problem == Problem("bad_bool", "force", "maybe")


@pytest.mark.parametrize(("permission", "forced"), [("admin", True), ("maintain", False)])
def test_only_admins_force_past_a_budget(permission: str, forced: bool) -> None:
    sender = User("alice")
    event = CommentEvent(
        "created", ISSUE, Comment(9, "/tembo new force=true go", sender), REPO, sender, 1
    )
    found = policy.trigger(event, RepoConfig())
    assert isinstance(found, policy.Trigger)
    decision = policy.decide(found, RepoConfig(), policy.Facts(permission=permission))
    assert isinstance(decision, policy.Dispatch) and decision.force is forced


@pytest.mark.parametrize(
    ("counts", "over"),
    [
        (fleet.Counts(), None),
        (fleet.Counts(user_today=2), fleet.Over("per_user_per_day", 2, 2, DAY0 + fleet.DAY)),
        (fleet.Counts(repo_today=9, repo_running=3), fleet.Over("concurrent_per_repo", 3, 3, None)),
        (fleet.Counts(org_today=50), fleet.Over("per_org_per_day", 50, 50, DAY0 + fleet.DAY)),
    ],
)
def test_the_first_limit_reached_is_the_one_named(
    counts: fleet.Counts, over: fleet.Over | None
) -> None:
    limits = fleet.Limits(per_user_per_day=2, per_org_per_day=50, concurrent_per_repo=3)
    assert fleet.over_limit(limits, counts, DAY0 + 3600) == over


def test_remaining_is_never_negative_and_none_where_unlimited() -> None:
    left = fleet.remaining(fleet.Limits(per_repo_per_day=2), fleet.Counts(repo_today=5))
    assert left == {
        "per_user_per_day": None,
        "per_repo_per_day": 0,
        "per_org_per_day": None,
        "concurrent_per_repo": None,
    }


@pytest.mark.parametrize(
    ("status", "unknown", "tried", "after"),
    [
        (401, 0, (), "agen"),
        (403, 0, (), "agen"),
        (404, 0, ("agen",), "magnet"),
        (400, 0, (), None),  # the request's own fault: another platform gets the same
        (401, 1, (), None),  # a create whose outcome is unknown: a session may exist
        (401, 0, ("agen", "magnet"), None),  # nothing left to try
    ],
)
def test_fallback_only_on_refusals_retrying_cannot_fix(
    status: int, unknown: int, tried: tuple[str, ...], after: str | None
) -> None:
    assert fleet.fallback_to("tembo", ("agen", "magnet"), tried, status, unknown) == after


@pytest.mark.parametrize(
    ("statuses", "tried", "after"),
    [
        ((503, 503, 503), (), "agen"),
        ((500, None, 502, 408), (), "agen"),  # no answer and 408 are the platform down too
        ((503,), ("agen",), "magnet"),
        ((429, 503, 503), (), None),  # a 429 says it is up, asking us to wait
        ((503, 400), (), None),
        ((), (), None),
        ((503, 503), ("agen", "magnet"), None),  # nothing left to try
    ],
)
def test_fallback_when_spent_only_when_every_failure_was_the_platform_down(
    statuses: tuple[int | None, ...], tried: tuple[str, ...], after: str | None
) -> None:
    assert fleet.fallback_when_spent("tembo", ("agen", "magnet"), tried, statuses) == after


def test_fallback_lists_only_known_platforms() -> None:
    assert parse_layer("fallback: [agen, magnet]\n", "repo") == {"fallback": ("agen", "magnet")}
    with pytest.raises(ConfigError):
        parse_layer("fallback: [nowhere]\n", "repo")


@pytest.mark.parametrize(
    ("failures", "statuses", "words"),
    [
        (5, (503,) * 5, "Tembo answered 503 five times"),
        (2, (None, None), "Tembo gave no answer twice"),
        (3, (503, None, 502), "Tembo failed three times (last answers: 503, no answer, 502)"),
        # More failures than statuses kept: the count is said, not a sameness not seen.
        (12, (503,) * 10, "Tembo failed 12 times (last answers: 503, 503, 503, 503, 503)"),
    ],
)
def test_the_comment_says_how_the_platform_failed(
    failures: int, statuses: tuple[int | None, ...], words: str
) -> None:
    assert spent_words("Tembo", failures, statuses) == words
