"""`.github/tembo.yml` parsing: strict, with the key and line of every problem (pure)."""

from __future__ import annotations

import pytest

from bot.fleet import Limits
from bot.repo_config import ConfigError, RepoConfig, merge, parse_layer
from bot.settings import Settings


def test_a_full_file_parses() -> None:
    text = """\
platform: dry-run
label: agent
command: /agent
agent: claudeCode:claude-opus-4-5
target_branch: develop
branch_name: "agents/{login}/{number}-{slug}"
min_permission: triage
allow_bots: ["renovate[bot]"]
include_comments: false
max_prompt_chars: 20000
one_session_per_issue: false
pull_requests: true
"""
    config = merge(RepoConfig(), parse_layer(text, "x"))
    assert config == RepoConfig(
        platform="dry-run",
        label="agent",
        command="/agent",
        agent="claudeCode:claude-opus-4-5",
        target_branch="develop",
        branch_name="agents/{login}/{number}-{slug}",
        min_permission="triage",
        allow_bots=("renovate[bot]",),
        include_comments="none",
        max_prompt_chars=20000,
        one_session_per_issue=False,
        pull_requests=True,
    )


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n"])
def test_an_empty_file_changes_nothing(text: str) -> None:
    assert parse_layer(text, "x") == {}


@pytest.mark.parametrize(
    ("text", "key", "line", "words"),
    [
        ("label: tembo\nplatfrom: tembo\n", "platfrom", 2, "unknown key"),
        (
            "platform: openai\n",
            "platform",
            1,
            "tembo, recoup, agen, magnet, devin, jules, cursor, dry-run",
        ),
        ("\n\nmin_permission: owner\n", "min_permission", 3, "read, triage, write"),
        ("command: tembo\n", "command", 1, "slash command"),
        ("max_prompt_chars: 10\n", "max_prompt_chars", 1, "1000 to 1000000"),
        ("max_prompt_chars: true\n", "max_prompt_chars", 1, "whole number"),
        ("include_comments: maybe\n", "include_comments", 1, "all, collaborators, none"),
        ("allow_bots: renovate\n", "allow_bots", 1, "list of bot logins"),
        ("branch_name: '{issue}'\n", "branch_name", 1, "{number}, {slug}, {login}"),
        ("branch_name: 'a..b'\n", "branch_name", 1, "valid git branch"),
        ("label: [a\n", "(yaml)", 2, "not valid YAML"),
        ("- a\n- b\n", "(file)", 1, "mapping"),
    ],
)
def test_problems_name_the_key_the_line_and_what_is_allowed(
    text: str, key: str, line: int, words: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_layer(text, ".github/tembo.yml")
    [problem] = caught.value.problems
    assert (problem.key, problem.line) == (key, line)
    assert words in problem.message
    assert f"line {line}" in str(caught.value)


def test_every_problem_is_reported_at_once_and_valid_keys_are_kept() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_layer("label: agent\nplatfrom: x\nmin_permission: god\n", "x")
    assert [p.key for p in caught.value.problems] == ["platfrom", "min_permission"]
    assert caught.value.partial == {"label": "agent"}


def test_later_layers_win_and_defaults_come_from_settings() -> None:
    base = RepoConfig.defaults(Settings(default_platform="agen"))
    org = parse_layer("label: agent\nmin_permission: admin\n", "org")
    repo = parse_layer("min_permission: triage\n", "repo")
    config = merge(base, org, repo)
    assert (config.platform, config.label, config.min_permission) == ("agen", "agent", "triage")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("include_comments: true\n", "all"),
        ("include_comments: false\n", "none"),
        ("include_comments: all\n", "all"),
        ("include_comments: collaborators\n", "collaborators"),
        ("include_comments: none\n", "none"),
        ("", "collaborators"),
    ],
)
def test_include_comments_takes_a_mode_and_old_files_booleans(text: str, expected: str) -> None:
    assert merge(RepoConfig(), parse_layer(text, "t.yml")).include_comments == expected


@pytest.mark.parametrize(
    ("text", "platform", "platforms"),
    [
        ("platform: [tembo, devin]\n", ("tembo", "devin"), ("tembo", "devin")),
        ("platform:\n  - jules\n", "jules", ("jules",)),
        ("platform: agen\n", "agen", ("agen",)),
    ],
)
def test_platform_takes_one_name_or_a_list(
    text: str, platform: str | tuple[str, ...], platforms: tuple[str, ...]
) -> None:
    config = merge(RepoConfig(), parse_layer(text, "t"))
    assert (config.platform, config.platforms) == (platform, platforms)
    assert parse_layer(config.as_yaml(), "again")["platform"] == platform


@pytest.mark.parametrize(
    "text", ["platform: []\n", "platform: [tembo, tembo]\n", "platform: [tembo, openai]\n"]
)
def test_a_platform_list_must_be_known_names_without_repeats(text: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_layer(text, "t")
    assert "`platform` (line 1)" in str(raised.value)


def test_operator_limits_are_the_layer_under_the_org_and_the_repository() -> None:
    base = RepoConfig.defaults(Settings(limits=Limits(per_org_per_day=50, per_repo_per_day=9)))
    org = parse_layer("limits:\n  per_user_per_day: 4\n", "org")
    repo = parse_layer("limits:\n  per_repo_per_day: 3\n", "repo")
    assert merge(base, org, own=repo).limits == Limits(
        per_user_per_day=4, per_repo_per_day=3, per_org_per_day=50
    )


@pytest.mark.parametrize("name", ["per_org_per_day", "per_user_per_day"])
@pytest.mark.parametrize(
    ("operator", "org", "repo", "expected"),
    [
        (None, "", "{name}: 500", 500),  # nothing under it: the repository sets it
        (100, "", "{name}: 500", 100),  # cannot raise the operator's
        (100, "", "{name}: null", 100),  # nor lift it with null
        (100, "", "{name}: 10", 10),  # may lower it
        (100, "{name}: 300", "{name}: 1000", 300),  # the org may raise
        (None, "{name}: 30", "{name}: 31", 30),
        (None, "{name}: 30", "per_repo_per_day: 2", 30),
    ],
)
def test_a_repository_may_lower_an_org_wide_limit_but_never_raise_it(
    name: str, operator: int | None, org: str, repo: str, expected: int
) -> None:
    """Both limits count across the organisation (a person's day counts every
    repository), so a repository's own file may only lower them."""
    base = RepoConfig.defaults(Settings(limits=Limits(**{name: operator})))
    org_layer = parse_layer(f"limits:\n  {org.format(name=name)}\n" if org else "", "org")
    own = parse_layer(f"limits:\n  {repo.format(name=name)}\n", "repo")
    assert getattr(merge(base, org_layer, own=own).limits, name) == expected
