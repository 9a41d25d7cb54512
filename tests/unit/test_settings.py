"""Settings from the environment: validation, secrets kept out of sight, the env file."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.fleet import Limits
from bot.settings import Secret, Settings, SettingsError


def test_defaults_follow_the_design() -> None:
    settings = Settings.from_env({})
    assert (settings.webhook_path, settings.port, settings.default_platform) == (
        "/webhook",
        3000,
        "tembo",
    )
    assert settings.database_url == "sqlite:///./data/tembo-dispatch.db"
    assert not settings.has_github_credentials


def test_several_webhook_secrets_and_escaped_newlines_in_the_key() -> None:
    settings = Settings.from_env(
        {
            "WEBHOOK_SECRET": "new, old",
            "PRIVATE_KEY": "-----BEGIN RSA PRIVATE KEY-----\\nabc\\n-----END RSA PRIVATE KEY-----",
            "APP_ID": "1",
        }
    )
    assert [s.reveal() for s in settings.webhook_secrets] == ["new", "old"]
    assert settings.private_key is not None and "\n" in settings.private_key.reveal()
    assert settings.has_github_credentials


def test_every_problem_is_named_at_once() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(
            {
                "PORT": "eighty",
                "DEFAULT_PLATFORM": "openai",
                "PRIVATE_KEY": "nope",
                "GITHUB_API_URL": "api.github.com",
            }
        )
    message = str(caught.value)
    for name in ("PORT", "DEFAULT_PLATFORM", "PRIVATE_KEY", "GITHUB_API_URL"):
        assert name in message


def test_secrets_never_show_in_repr() -> None:
    settings = Settings.from_env({"TEMBO_API_KEY": "tk_live_123", "WEBHOOK_SECRET": "s3cret!"})
    assert "tk_live_123" not in repr(settings) and "s3cret!" not in repr(settings)
    assert str(Secret("x")) == "**********"


def test_the_env_file_is_read_and_the_process_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text('APP_ID="7"\nWEBHOOK_SECRET=from-file\n# comment\nPORT=4000\n')
    monkeypatch.setenv("ENV_FILE", str(env_file))
    monkeypatch.setenv("PORT", "5000")
    monkeypatch.delenv("APP_ID", raising=False)
    monkeypatch.delenv("WEBHOOK_SECRET", raising=False)
    settings = Settings.from_env()
    assert (settings.app_id, settings.port) == ("7", 5000)
    assert [s.reveal() for s in settings.webhook_secrets] == ["from-file"]


def test_quotes_a_dotenv_file_carries_are_taken_off() -> None:
    settings = Settings.from_env({"APP_ID": '"123"', "WEBHOOK_SECRET": "'s'"})
    assert settings.app_id == "123"
    assert [s.reveal() for s in settings.webhook_secrets] == ["s"]


def test_operator_limits_come_from_the_environment_and_bad_ones_are_named() -> None:
    settings = Settings.from_env(
        {"LIMITS_PER_ORG_PER_DAY": "200", "LIMITS_CONCURRENT_PER_REPO": "0"}
    )
    assert settings.limits == Limits(per_org_per_day=200, concurrent_per_repo=0)
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"LIMITS_PER_USER_PER_DAY": "-1", "LIMITS_PER_REPO_PER_DAY": "ten"})
    assert "LIMITS_PER_USER_PER_DAY='-1' must be a whole number" in str(caught.value)
    assert "LIMITS_PER_REPO_PER_DAY='ten'" in str(caught.value)
