"""Operator settings: the environment read once, validated, and frozen.

Owns every environment variable of DESIGN.md. Nothing else in the package reads
`os.environ`; the rest receives a `Settings`. Secrets are wrapped in `Secret` so a
stray `repr()` or log line cannot print them.

Platform variables are not fields here: each platform declares its own in its
`bot.platforms` entry, and `from_env` reads every declared one into `platform_env`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bot import platforms
from bot.fleet import LIMIT_NAMES, Limits

PLATFORMS = platforms.NAMES
LOG_LEVELS = ("debug", "info", "warning", "error")
SCOPES = ("app", "installation")


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


class PlatformEnv:
    """Every variable the platforms declare (`bot.platforms`), read once: defaults
    applied, secrets kept in `Secret`. Immutable."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, str | Secret]) -> None:
        self._values: dict[str, str | Secret] = dict(values)

    @classmethod
    def of(cls, **values: str) -> PlatformEnv:
        """The declared defaults with `values` over them (secrets wrapped), unvalidated:
        for code and tests that build `Settings` without an environment."""
        return cls.read(values, [])

    @classmethod
    def read(cls, env: Mapping[str, str | None], problems: list[str]) -> PlatformEnv:
        """Each declared variable from `env` (already stripped; missing or None is
        unset); a wrong value is added to `problems` and its default kept."""
        values: dict[str, str | Secret] = {}
        for variable in platforms.variables():
            raw = env.get(variable.name) or None
            value = raw if raw is not None else variable.default
            if value is None:
                continue
            if variable.url:
                if not value.startswith(("http://", "https://")):
                    problems.append(
                        f"{variable.name}={value!r} must start with http:// or https://"
                    )
                value = value.rstrip("/")
            if variable.choices:
                value = value.lower()
                if value not in variable.choices:
                    problems.append(
                        f"{variable.name}={raw!r} is not one of {', '.join(variable.choices)}"
                    )
                    value = variable.default or variable.choices[0]
            values[variable.name] = Secret(value) if variable.secret else value
        return cls(values)

    def get(self, name: str) -> str | None:
        """The value (a secret revealed), or None when unset and without a default."""
        value = self._values.get(name)
        return value.reveal() if isinstance(value, Secret) else value

    def require(self, name: str) -> str:
        """The value of a variable the caller knows is set (required or defaulted)."""
        value = self.get(name)
        if value is None:
            raise KeyError(f"{name} is not set")
        return value

    def replace(self, **values: str | None) -> PlatformEnv:
        """A copy with `values` read over this one's (None puts a variable back to its default)."""
        merged: dict[str, str | None] = {name: self.get(name) for name in self._values}
        merged.update(values)
        return PlatformEnv.read(merged, [])

    def secrets(self) -> list[str]:
        return [v.reveal() for v in self._values.values() if isinstance(v, Secret)]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PlatformEnv) and self._values == other._values

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._values.items(), key=lambda item: item[0])))

    def __repr__(self) -> str:
        return f"PlatformEnv({self._values!r})"


@dataclass(frozen=True)
class Settings:
    app_id: str | None = None
    private_key: Secret | None = None
    webhook_secrets: tuple[Secret, ...] = ()
    webhook_path: str = "/webhook"
    github_api_url: str = "https://api.github.com"
    github_url: str = "https://github.com"
    webhook_proxy_url: str | None = None
    # This server's public address (behind a proxy or a tunnel): a Host the setup page trusts.
    public_url: str | None = None
    # Bearer token for the status page and /metrics from anywhere but this machine.
    status_token: Secret | None = None
    host: str = "0.0.0.0"  # noqa: S104 - a server is meant to listen on all interfaces
    port: int = 3000
    database_url: str = "sqlite:///./data/tembo-dispatch.db"

    # Every platform's declared variables (bot.platforms), defaults applied.
    platform_env: PlatformEnv = field(default_factory=PlatformEnv.of)

    default_platform: str = "tembo"
    # The operator's `limits:` (LIMITS_PER_USER_PER_DAY …): the layer under every
    # organisation's and repository's file.
    limits: Limits = field(default_factory=Limits)
    log_level: str = "info"
    log_format: str = "json"

    # Worker tuning; defaults suit one process, tests shrink the delays.
    # Jobs mostly wait on GitHub (and on our own pacing), so many run at once.
    worker_concurrency: int = 16
    max_attempts: int = 8
    retry_base_seconds: float = 2.0
    retry_max_seconds: float = 300.0
    lease_seconds: float = 120.0
    # Days a finished job (with its payload, up to 25 MB) is kept; deliveries' ids and
    # replay keys are kept at least ingest's dedupe window (a week) whatever this says.
    retention_days: float = 7.0
    # GitHub's content budget (bot.budget): its secondary limit on content-creating calls,
    # 80 a minute and 500 an hour, shared by every replica, for the App's bot user as a
    # whole ("app") or per installation. The windows' lengths change only in benchmarks.
    github_content_per_minute: int = 80
    github_content_per_hour: int = 500
    github_content_scope: str = "app"
    github_content_minute_seconds: float = 60.0
    github_content_hour_seconds: float = 3600.0
    # Ingest: seconds to receive a body once its headers are in; requests read at once.
    webhook_body_timeout: float = 10.0
    webhook_max_pending: int = 64
    env_file: str = ".env"

    @property
    def has_github_credentials(self) -> bool:
        return bool(self.app_id and self.private_key and self.webhook_secrets)

    def replace(self, **changes: object) -> Settings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def with_platform_env(self, **values: str | None) -> Settings:
        """A copy with platform variables set (None: back to the default), e.g. TEMBO_API_KEY."""
        return dataclasses.replace(self, platform_env=self.platform_env.replace(**values))

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
        public_url = get("PUBLIC_URL")
        if public_url is not None:
            public_url = url("PUBLIC_URL", public_url)
        status_token = get("STATUS_TOKEN")
        if status_token is not None and len(status_token) < 16:
            problems.append("STATUS_TOKEN must be at least 16 characters: a long random string")
        scope = (get("GITHUB_CONTENT_SCOPE") or "app").lower()
        if scope not in SCOPES:
            problems.append(f"GITHUB_CONTENT_SCOPE={scope!r} is not one of {', '.join(SCOPES)}")
        limits: dict[str, int] = {}
        for name in LIMIT_NAMES:
            variable = limit_variable(name)
            raw = get(variable)
            if raw is None:
                continue
            if not raw.isdigit():
                problems.append(
                    f"{variable}={raw!r} must be a whole number (0 or more); unset it for no limit"
                )
                continue
            limits[name] = int(raw)
        settings = cls(
            app_id=get("APP_ID"),
            private_key=Secret(private_key) if private_key else None,
            webhook_secrets=secrets,
            webhook_path=webhook_path,
            github_api_url=url("GITHUB_API_URL", cls.github_api_url),
            github_url=url("GITHUB_URL", cls.github_url),
            webhook_proxy_url=get("WEBHOOK_PROXY_URL"),
            public_url=public_url,
            status_token=Secret(status_token) if status_token else None,
            host=get("HOST") or cls.host,
            port=int(port),
            database_url=database_url,
            platform_env=PlatformEnv.read(
                {variable.name: get(variable.name) for variable in platforms.variables()},
                problems,
            ),
            default_platform=default_platform,
            limits=Limits(**limits),
            log_level=log_level,
            log_format=log_format,
            worker_concurrency=int(number("WORKER_CONCURRENCY", 16, int)),
            max_attempts=int(number("MAX_ATTEMPTS", 8, int)),
            retry_base_seconds=number("RETRY_BASE_SECONDS", 2.0, float),
            lease_seconds=number("LEASE_SECONDS", 120.0, float),
            retention_days=number("RETENTION_DAYS", 7.0, float),
            github_content_per_minute=int(number("GITHUB_CONTENT_PER_MINUTE", 80, int)),
            github_content_per_hour=int(number("GITHUB_CONTENT_PER_HOUR", 500, int)),
            github_content_scope=scope,
            github_content_minute_seconds=number("GITHUB_CONTENT_MINUTE_SECONDS", 60.0, float),
            github_content_hour_seconds=number("GITHUB_CONTENT_HOUR_SECONDS", 3600.0, float),
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
            for s in (self.private_key, self.status_token, *self.webhook_secrets)
            if s is not None
        ]
        return found + self.platform_env.secrets()


def limit_variable(name: str) -> str:
    """The variable of one `limits:` key: per_org_per_day -> LIMITS_PER_ORG_PER_DAY."""
    return f"LIMITS_{name.upper()}"


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
    "PUBLIC_URL",
    "STATUS_TOKEN",
    "HOST",
    "PORT",
    "DATABASE_URL",
    "DEFAULT_PLATFORM",
    *(limit_variable(name) for name in LIMIT_NAMES),
    "LOG_LEVEL",
    "LOG_FORMAT",
    "WORKER_CONCURRENCY",
    "MAX_ATTEMPTS",
    "RETRY_BASE_SECONDS",
    "LEASE_SECONDS",
    "RETENTION_DAYS",
    "GITHUB_CONTENT_PER_MINUTE",
    "GITHUB_CONTENT_PER_HOUR",
    "GITHUB_CONTENT_SCOPE",
    "GITHUB_CONTENT_MINUTE_SECONDS",
    "GITHUB_CONTENT_HOUR_SECONDS",
    "WEBHOOK_BODY_TIMEOUT",
    "WEBHOOK_MAX_PENDING",
    "ENV_FILE",
    *(variable.name for variable in platforms.variables()),
)
