"""The platform registry: one entry per platform, and what the rest of the app reads from it
(settings, secrets, help text, comments, capability flags) follows the entry."""

from __future__ import annotations

import pytest

from bot import dispatch_status, messages, platforms
from bot.commands import USAGE
from bot.repo_config import RepoConfig
from bot.settings import ENV_VARS, PlatformEnv, Settings, SettingsError


def test_every_declared_variable_is_read_and_listed_for_deploy_files() -> None:
    declared = {v.name for v in platforms.variables()}
    assert declared <= set(ENV_VARS)
    assert {"TEMBO_API", "MAGNET_API_KEY"} <= declared
    names = [p.name for p in platforms.REGISTRY]
    assert len(names) == len(set(names))


def test_every_secret_variable_of_every_platform_is_scrubbed() -> None:
    secret_names = [v.name for v in platforms.variables() if v.secret]
    env = {name: f"value-of-{name}" for name in secret_names}
    settings = Settings.from_env(env)
    assert sorted(settings.secrets()) == sorted(env.values())
    for value in env.values():
        assert value not in repr(settings)


def test_defaults_come_from_the_entries() -> None:
    env = Settings.from_env({}).platform_env
    assert env.get("TEMBO_BASE_URL") == "https://api.tembo.io"
    assert env.get("TEMBO_API") == "legacy"
    assert env.get("TEMBO_API_KEY") is None
    assert Settings().platform_env == env


@pytest.mark.parametrize(
    ("variable", "value"),
    [("TEMBO_API", "v2"), ("RECOUP_BASE_URL", "api.recoupable.com")],
)
def test_a_wrong_platform_value_is_named(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env({variable: value})


def test_choices_ignore_case_and_urls_lose_a_trailing_slash() -> None:
    env = Settings.from_env({"TEMBO_API": "V1", "AGEN_BASE_URL": "https://agen.test/"})
    assert env.platform_env.get("TEMBO_API") == "v1"
    assert env.platform_env.get("AGEN_BASE_URL") == "https://agen.test"


def test_capabilities_are_known_without_credentials() -> None:
    tembo = platforms.get("tembo")
    magnet = platforms.get("magnet")
    assert tembo is not None and magnet is not None
    assert (tembo.can_find, tembo.can_read, tembo.can_message, tembo.can_stop) == (
        True,
        True,
        True,
        True,
    )
    assert (magnet.can_message, magnet.can_stop) == (False, False)


def test_help_lists_one_line_per_platform_and_comments_use_display_names() -> None:
    text = messages.help_text(RepoConfig())
    for entry in platforms.REGISTRY:
        assert f"- `{entry.name}`: {entry.usage}" in text
        assert f"`{entry.name}`" in USAGE
    assert "a Recoup session" in dispatch_status.failed("recoup", "nope", ident="gh-1")


def test_metrics_know_each_platforms_base_url() -> None:
    settings = Settings(platform_env=PlatformEnv.of(MAGNET_BASE_URL="https://magnet.test"))
    urls = platforms.base_urls(settings)
    assert urls["magnet"] == "https://magnet.test"
    assert urls["tembo"] == "https://api.tembo.io"
    assert "dry-run" not in urls
