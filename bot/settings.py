"""Operator settings: the environment read once, validated, and frozen.

Owns every environment variable of DESIGN.md. Nothing else in the package reads
`os.environ`; the rest receives a `Settings`. Secrets are wrapped in `Secret` so a
stray `repr()` or log line cannot print them.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

PLATFORMS = ("tembo", "recoup", "agen", "magnet", "dry-run")
LOG_LEVELS = ("debug", "info", "warning", "error")


def read_env_file(path: str | Path) -> dict[str, str]:
    """`KEY=value` lines of an env file (`export`, quotes and comments allowed); {} if absent.

    Values are taken literally (no escapes, no `$` expansion), like systemd and compose
    read the lines this module writes."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return {}
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        key, value = key.strip(), value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        else:
            value = value.split(" #", 1)[0].strip()
        values[key] = value
    return values


class SettingsError(ValueError):
    """One or more variables are wrong; the message says which and how to fix them."""


@dataclass(frozen=True)
class Secret:
    """A value that never shows itself in `repr`, logs or tracebacks."""

    value: str = field(repr=False)

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __str__(self) -> str:
        return "**********"

    def reveal(self) -> str:
        return self.value


@dataclass(frozen=True)
class Settings:
    app_id: str | None = None
    private_key: Secret | None = None
    webhook_secrets: tuple[Secret, ...] = ()
    webhook_path: str = "/webhook"
    github_api_url: str = "https://api.github.com"
    github_url: str = "https://github.com"
    webhook_proxy_url: str | None = None
    host: str = "0.0.0.0"  # noqa: S104 - a server is meant to listen on all interfaces
    port: int = 3000
    database_url: str = "sqlite:///./data/tembo-dispatch.db"

    tembo_api_key: Secret | None = None
    tembo_base_url: str = "https://api.tembo.io"
    tembo_agent: str | None = None

    recoup_api_key: Secret | None = None
    recoup_base_url: str = "https://api.recoupable.com"
    recoup_chat_url: str = "https://chat.recoupable.com/sessions/{session_id}/chats/{chat_id}"

    agen_api_key: Secret | None = None
    agen_base_url: str = "https://api.agenhq.com"
    agen_session_url: str = "https://app.agenhq.com/sessions/{id}"

    magnet_session_cookie: Secret | None = None
    magnet_organization_id: str | None = None
    magnet_base_url: str = "https://magnet.run"
    magnet_session_url: str = "https://magnet.run/sessions/{id}"

    default_platform: str = "tembo"
    log_level: str = "info"
    log_format: str = "json"

    # Worker tuning; defaults suit one process, tests shrink the delays.
    # Jobs mostly wait on GitHub (and on our own pacing), so many run at once.
    worker_concurrency: int = 16
    max_attempts: int = 8
    retry_base_seconds: float = 2.0
    retry_max_seconds: float = 300.0
    lease_seconds: float = 120.0
    # Content-creating GitHub calls (POST/PATCH) per minute per installation: under the
    # secondary limit of 80 with a margin.
    github_content_per_minute: float = 75.0
    # Ingest: seconds to receive a body once its headers are in; requests read at once.
    webhook_body_timeout: float = 10.0
    webhook_max_pending: int = 64
    env_file: str = ".env"

    @property
    def has_github_credentials(self) -> bool:
        return bool(self.app_id and self.private_key and self.webhook_secrets)

    def replace(self, **changes: object) -> Settings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `env` (default: the process environment over `.env`).

        Raises `SettingsError` naming every bad variable at once, so an operator
        fixes them in one go rather than one restart each.
        """
        if env is None:
            # The process environment wins over the env file the setup page writes.
            env = {**read_env_file(os.environ.get("ENV_FILE", ".env")), **os.environ}
        problems: list[str] = []

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            # `docker run --env-file` and kubectl keep the quotes a .env file carries.
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1].strip()
            return value or None

        def secret(name: str) -> Secret | None:
            value = get(name)
            return Secret(value) if value else None

        def url(name: str, default: str) -> str:
            value = get(name) or default
            if not value.startswith(("http://", "https://")):
                problems.append(f"{name}={value!r} must start with http:// or https://")
            return value.rstrip("/")

        def number(name: str, default: float, kind: type[int] | type[float]) -> float:
            raw = get(name)
            if raw is None:
                return default
            try:
                value = kind(raw)
            except ValueError:
                problems.append(f"{name}={raw!r} must be a {kind.__name__}")
                return default
            if value <= 0:
                problems.append(f"{name}={raw!r} must be greater than 0")
                return default
            return value

        private_key = get("PRIVATE_KEY")
        key_path = get("PRIVATE_KEY_PATH")
        if private_key is None and key_path is not None:
            try:
                private_key = Path(key_path).read_text()
            except OSError as exc:
                problems.append(f"PRIVATE_KEY_PATH={key_path!r} cannot be read: {exc.strerror}")
        if private_key is not None:
            # Many hosts cannot hold multi-line values: accept literal "\n" as Probot does.
            private_key = private_key.replace("\\n", "\n")
            if "-----BEGIN" not in private_key:
                problems.append(
                    "PRIVATE_KEY is not a PEM key: paste the whole .pem file "
                    "(-----BEGIN RSA PRIVATE KEY----- …) or set PRIVATE_KEY_PATH"
                )

        secrets = tuple(
            Secret(part.strip())
            for part in (get("WEBHOOK_SECRET") or "").split(",")
            if part.strip()
        )

        webhook_path = get("WEBHOOK_PATH") or "/webhook"
        if not webhook_path.startswith("/"):
            problems.append(f"WEBHOOK_PATH={webhook_path!r} must start with /")

        default_platform = (get("DEFAULT_PLATFORM") or "tembo").lower()
        if default_platform not in PLATFORMS:
            problems.append(
                f"DEFAULT_PLATFORM={default_platform!r} is not one of {', '.join(PLATFORMS)}"
            )

        log_level = (get("LOG_LEVEL") or "info").lower()
        if log_level not in LOG_LEVELS:
            problems.append(f"LOG_LEVEL={log_level!r} is not one of {', '.join(LOG_LEVELS)}")
        log_format = (get("LOG_FORMAT") or "json").lower()
        if log_format not in ("json", "pretty"):
            problems.append(f"LOG_FORMAT={log_format!r} is not json or pretty")

        database_url = get("DATABASE_URL") or cls.database_url
        if not database_url.startswith(("sqlite://", "postgresql://", "postgres://")):
            problems.append(
                f"DATABASE_URL must be sqlite:///path or postgresql://…, not {database_url[:16]!r}…"
            )

        port = number("PORT", 3000, int)
        settings = cls(
            app_id=get("APP_ID"),
            private_key=Secret(private_key) if private_key else None,
            webhook_secrets=secrets,
            webhook_path=webhook_path,
            github_api_url=url("GITHUB_API_URL", cls.github_api_url),
            github_url=url("GITHUB_URL", cls.github_url),
            webhook_proxy_url=get("WEBHOOK_PROXY_URL"),
            host=get("HOST") or cls.host,
            port=int(port),
            database_url=database_url,
            tembo_api_key=secret("TEMBO_API_KEY"),
            tembo_base_url=url("TEMBO_BASE_URL", cls.tembo_base_url),
            tembo_agent=get("TEMBO_AGENT"),
            recoup_api_key=secret("RECOUP_API_KEY"),
            recoup_base_url=url("RECOUP_BASE_URL", cls.recoup_base_url),
            recoup_chat_url=get("RECOUP_CHAT_URL") or cls.recoup_chat_url,
            agen_api_key=secret("AGEN_API_KEY"),
            agen_base_url=url("AGEN_BASE_URL", cls.agen_base_url),
            agen_session_url=get("AGEN_SESSION_URL") or cls.agen_session_url,
            magnet_session_cookie=secret("MAGNET_SESSION_COOKIE"),
            magnet_organization_id=get("MAGNET_ORGANIZATION_ID"),
            magnet_base_url=url("MAGNET_BASE_URL", cls.magnet_base_url),
            magnet_session_url=get("MAGNET_SESSION_URL") or cls.magnet_session_url,
            default_platform=default_platform,
            log_level=log_level,
            log_format=log_format,
            worker_concurrency=int(number("WORKER_CONCURRENCY", 16, int)),
            max_attempts=int(number("MAX_ATTEMPTS", 8, int)),
            retry_base_seconds=number("RETRY_BASE_SECONDS", 2.0, float),
            lease_seconds=number("LEASE_SECONDS", 120.0, float),
            github_content_per_minute=number("GITHUB_CONTENT_PER_MINUTE", 75.0, float),
            webhook_body_timeout=number("WEBHOOK_BODY_TIMEOUT", 10.0, float),
            webhook_max_pending=int(number("WEBHOOK_MAX_PENDING", 64, int)),
            env_file=get("ENV_FILE") or ".env",
        )
        if problems:
            raise SettingsError("; ".join(problems))
        return settings

    def secrets(self) -> list[str]:
        """Every secret value, for tests and log scrubbing."""
        found = [
            s.reveal()
            for s in (
                self.private_key,
                self.tembo_api_key,
                self.recoup_api_key,
                self.agen_api_key,
                self.magnet_session_cookie,
                *self.webhook_secrets,
            )
            if s is not None
        ]
        return found


# Every variable `Settings.from_env` reads, for deployment files and their tests.
ENV_VARS = (
    "APP_ID",
    "PRIVATE_KEY",
    "PRIVATE_KEY_PATH",
    "WEBHOOK_SECRET",
    "WEBHOOK_PATH",
    "GITHUB_API_URL",
    "GITHUB_URL",
    "WEBHOOK_PROXY_URL",
    "HOST",
    "PORT",
    "DATABASE_URL",
    "TEMBO_API_KEY",
    "TEMBO_BASE_URL",
    "TEMBO_AGENT",
    "RECOUP_API_KEY",
    "RECOUP_BASE_URL",
    "RECOUP_CHAT_URL",
    "AGEN_API_KEY",
    "AGEN_BASE_URL",
    "AGEN_SESSION_URL",
    "MAGNET_SESSION_COOKIE",
    "MAGNET_ORGANIZATION_ID",
    "MAGNET_BASE_URL",
    "MAGNET_SESSION_URL",
    "DEFAULT_PLATFORM",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "WORKER_CONCURRENCY",
    "MAX_ATTEMPTS",
    "RETRY_BASE_SECONDS",
    "LEASE_SECONDS",
    "GITHUB_CONTENT_PER_MINUTE",
    "WEBHOOK_BODY_TIMEOUT",
    "WEBHOOK_MAX_PENDING",
    "ENV_FILE",
)
