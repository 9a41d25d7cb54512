"""The platform registry: one `Platform` entry per session platform, and nothing else
knows a platform's facts.

An entry says everything the rest of the app asks about a platform:

- `name` (what `.github/tembo.yml` and `/tembo platform=` use), `display` (what comments
  show), `usage` (its one line in `/tembo help`);
- `variables`: every environment variable it reads, each with its default and whether it
  is a secret. `Settings.from_env` reads all declared variables into
  `Settings.platform_env`, `settings.ENV_VARS` and the deploy files list them, and
  `Settings.secrets()` (log and comment scrubbing) takes every `secret=True` one;
- `required`: the variables without which `build` cannot make an adapter, and `missing`,
  the sentence an operator reads when one is unset (`MissingCredentials`);
- `base_url`: the variable holding the API's base URL, so metrics count its calls;
- `adapter`: the adapter class, whose class attributes `can_find`, `can_read`,
  `can_message`, `can_stop` (see `ports.SessionPlatform`) are read without building it;
- `build(env, http)`: the adapter, from the declared variables and the shared client;
- `probe(env, http)`: optional; what `python -m bot check` says about the credentials,
  as `(ok, one line)`. Without one, check says the key is set but not verified.

Adding a platform touches its adapter (`bot/adapters/platforms/<name>.py`), its entry in
`REGISTRY` below, its fake (`tests/support/fakes/<name>.py`) and its tests: nothing else.
A new entry looks like this:

    Platform(
        name="devin",
        display="Devin",
        usage="Devin opens a pull request; takes messages",
        adapter=DevinPlatform,
        variables=(
            Variable("DEVIN_API_KEY", secret=True),
            Variable("DEVIN_BASE_URL", default="https://api.devin.ai", url=True),
        ),
        required=("DEVIN_API_KEY",),
        missing="ask its operator to add a Devin API key",
        base_url="DEVIN_BASE_URL",
        build=lambda env, http: DevinPlatform(
            http, env.require("DEVIN_API_KEY"), env.require("DEVIN_BASE_URL")
        ),
    ),

`env` is a `settings.PlatformEnv`: `env.get(NAME)` is the value (a secret revealed, a
default applied) or None; `env.require(NAME)` is the value of a variable listed in
`required` or given a default. The registry does no I/O itself; probes do theirs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from bot.adapters.platforms import cursor, devin, jules
from bot.adapters.platforms.agen import AgenPlatform
from bot.adapters.platforms.cursor import CursorPlatform
from bot.adapters.platforms.devin import DevinPlatform
from bot.adapters.platforms.dry_run import DryRunPlatform
from bot.adapters.platforms.jules import JulesPlatform
from bot.adapters.platforms.magnet import MagnetPlatform
from bot.adapters.platforms.recoup import RecoupPlatform
from bot.adapters.platforms.tembo import TemboPlatform
from bot.adapters.platforms.tembo import probe as tembo_probe
from bot.ports import MissingCredentials, PlatformFactory, SessionPlatform

if TYPE_CHECKING:
    from bot.settings import PlatformEnv, Settings

SERVER = "on the server running tembo-dispatch"

Probe = Callable[["PlatformEnv", httpx.AsyncClient], Awaitable[tuple[bool, str]]]


@dataclass(frozen=True)
class Variable:
    """One environment variable a platform reads."""

    name: str
    default: str | None = None
    secret: bool = False  # wrapped in `Secret`, scrubbed from logs and comments
    url: bool = False  # must start with http:// or https://; a trailing / is dropped
    choices: tuple[str, ...] = ()  # the values allowed, lower-cased; empty: any


@dataclass(frozen=True)
class Platform:
    name: str
    display: str
    usage: str
    adapter: type[Any]
    build: Callable[[PlatformEnv, httpx.AsyncClient], SessionPlatform]
    variables: tuple[Variable, ...] = ()
    required: tuple[str, ...] = ()
    missing: str = ""
    base_url: str | None = None
    probe: Probe | None = None

    # The adapter's capabilities, known without building it (ports.SessionPlatform).
    @property
    def can_find(self) -> bool:
        return bool(self.adapter.can_find)

    @property
    def can_read(self) -> bool:
        return bool(self.adapter.can_read)

    @property
    def can_message(self) -> bool:
        return bool(self.adapter.can_message)

    @property
    def can_stop(self) -> bool:
        return bool(self.adapter.can_stop)

    def unset(self, env: PlatformEnv) -> list[str]:
        """The required variables that have no value."""
        return [name for name in self.required if env.get(name) is None]


def _tembo(env: PlatformEnv, http: httpx.AsyncClient) -> TemboPlatform:
    return TemboPlatform(
        http,
        env.get("TEMBO_API_KEY") or "",
        env.require("TEMBO_BASE_URL"),
        env.get("TEMBO_AGENT"),
        api=env.require("TEMBO_API"),
    )


REGISTRY: tuple[Platform, ...] = (
    Platform(
        name="tembo",
        display="Tembo",
        usage="Tembo's coding agents open a pull request",
        adapter=TemboPlatform,
        variables=(
            Variable("TEMBO_API_KEY", secret=True),
            Variable("TEMBO_BASE_URL", default="https://api.tembo.io", url=True),
            Variable("TEMBO_AGENT"),
            Variable("TEMBO_API", default="legacy", choices=("legacy", "v1")),
        ),
        required=("TEMBO_API_KEY",),
        missing="ask its operator to add a Tembo API key",
        base_url="TEMBO_BASE_URL",
        build=_tembo,
        probe=tembo_probe,
    ),
    Platform(
        name="recoup",
        display="Recoup",
        usage="Recoup works on the issue's repository in its own sandbox",
        adapter=RecoupPlatform,
        variables=(
            Variable("RECOUP_API_KEY", secret=True),
            Variable("RECOUP_BASE_URL", default="https://api.recoupable.com", url=True),
            Variable(
                "RECOUP_CHAT_URL",
                default="https://chat.recoupable.com/sessions/{session_id}/chats/{chat_id}",
            ),
        ),
        required=("RECOUP_API_KEY",),
        missing="ask its operator to add a Recoup API key",
        base_url="RECOUP_BASE_URL",
        build=lambda env, http: RecoupPlatform(
            http,
            env.require("RECOUP_API_KEY"),
            env.require("RECOUP_BASE_URL"),
            env.require("RECOUP_CHAT_URL"),
        ),
    ),
    Platform(
        name="agen",
        display="Agen",
        usage="Agen works in the workspace its key belongs to",
        adapter=AgenPlatform,
        variables=(
            Variable("AGEN_API_KEY", secret=True),
            Variable("AGEN_BASE_URL", default="https://api.agenhq.com", url=True),
            Variable("AGEN_SESSION_URL", default="https://app.agenhq.com/sessions/{id}"),
        ),
        required=("AGEN_API_KEY",),
        missing="ask its operator to add an Agen API key",
        base_url="AGEN_BASE_URL",
        build=lambda env, http: AgenPlatform(
            http,
            env.require("AGEN_API_KEY"),
            env.require("AGEN_BASE_URL"),
            env.require("AGEN_SESSION_URL"),
        ),
    ),
    Platform(
        name="magnet",
        display="Magnet",
        usage="Magnet names its own branch and opens a pull request",
        adapter=MagnetPlatform,
        variables=(
            Variable("MAGNET_SESSION_COOKIE", secret=True),
            Variable("MAGNET_ORGANIZATION_ID"),
            Variable("MAGNET_API_KEY", secret=True),
            Variable("MAGNET_BASE_URL", default="https://magnet.run", url=True),
            Variable("MAGNET_SESSION_URL", default="https://magnet.run/sessions/{id}"),
        ),
        required=("MAGNET_SESSION_COOKIE", "MAGNET_ORGANIZATION_ID"),
        missing=(
            "Magnet does not let API keys create sessions (each session must belong to a "
            "signed-in user), so its operator must sign in to magnet.run, copy the "
            "browser's __session cookie into MAGNET_SESSION_COOKIE and the organization's "
            "id into MAGNET_ORGANIZATION_ID"
        ),
        base_url="MAGNET_BASE_URL",
        build=lambda env, http: MagnetPlatform(
            http,
            env.require("MAGNET_SESSION_COOKIE"),
            env.require("MAGNET_ORGANIZATION_ID"),
            env.require("MAGNET_BASE_URL"),
            env.require("MAGNET_SESSION_URL"),
            api_key=env.get("MAGNET_API_KEY"),
        ),
    ),
    Platform(
        name="devin",
        display="Devin",
        usage="Devin works from the prompt (which names the repository) and opens a pull "
        "request; takes messages and stops",
        adapter=DevinPlatform,
        variables=(
            Variable("DEVIN_API_KEY", secret=True),
            Variable("DEVIN_BASE_URL", default="https://api.devin.ai", url=True),
        ),
        required=("DEVIN_API_KEY",),
        missing="ask its operator to add a Devin v1 API key (apk_user_… or apk_…)",
        base_url="DEVIN_BASE_URL",
        build=lambda env, http: DevinPlatform(
            http, env.require("DEVIN_API_KEY"), env.require("DEVIN_BASE_URL")
        ),
        probe=lambda env, http: devin.probe(
            http, env.require("DEVIN_API_KEY"), env.require("DEVIN_BASE_URL")
        ),
    ),
    Platform(
        name="jules",
        display="Jules",
        usage="Jules works on a repository connected to it and opens a pull request; "
        "takes messages, cannot be stopped from here",
        adapter=JulesPlatform,
        variables=(
            Variable("JULES_API_KEY", secret=True),
            Variable("JULES_BASE_URL", default="https://jules.googleapis.com", url=True),
        ),
        required=("JULES_API_KEY",),
        missing="ask its operator to add a Jules API key",
        base_url="JULES_BASE_URL",
        build=lambda env, http: JulesPlatform(
            http, env.require("JULES_API_KEY"), env.require("JULES_BASE_URL")
        ),
        probe=lambda env, http: jules.probe(
            http, env.require("JULES_API_KEY"), env.require("JULES_BASE_URL")
        ),
    ),
    Platform(
        name="cursor",
        display="Cursor",
        usage="a Cursor cloud agent names its own branch and opens a pull request; takes "
        "messages and stops",
        adapter=CursorPlatform,
        variables=(
            Variable("CURSOR_API_KEY", secret=True),
            Variable("CURSOR_BASE_URL", default="https://api.cursor.com", url=True),
        ),
        required=("CURSOR_API_KEY",),
        missing="ask its operator to add a Cursor API key",
        base_url="CURSOR_BASE_URL",
        build=lambda env, http: CursorPlatform(
            http, env.require("CURSOR_API_KEY"), env.require("CURSOR_BASE_URL")
        ),
        probe=lambda env, http: cursor.probe(
            http, env.require("CURSOR_API_KEY"), env.require("CURSOR_BASE_URL")
        ),
    ),
    Platform(
        name="dry-run",
        display="dry run",
        usage="shows the request Tembo would be sent, and sends nothing",
        adapter=DryRunPlatform,
        # Needs no key: the key is redacted from the preview and nothing is sent.
        build=lambda env, http: DryRunPlatform(_tembo(env, http)),
    ),
)

BY_NAME = {platform.name: platform for platform in REGISTRY}
NAMES = tuple(BY_NAME)


def variables() -> tuple[Variable, ...]:
    """Every variable any platform declares, in registry order."""
    return tuple(variable for platform in REGISTRY for variable in platform.variables)


def get(name: str) -> Platform | None:
    return BY_NAME.get(name)


def display_name(name: str) -> str:
    platform = BY_NAME.get(name)
    return platform.display if platform else name


def base_urls(settings: Settings) -> dict[str, str]:
    """Each platform's API base URL, by name, for counting its calls."""
    return {
        platform.name: url
        for platform in REGISTRY
        if platform.base_url and (url := settings.platform_env.get(platform.base_url))
    }


def build(name: str, settings: Settings, http: httpx.AsyncClient) -> SessionPlatform:
    """The adapter for `name`; raises `MissingCredentials` naming the variables to set."""
    platform = BY_NAME.get(name)
    if platform is None:
        raise MissingCredentials(f"the platform {name!r} is not available on this server")
    unset = platform.unset(settings.platform_env)
    if unset:
        verb = "is" if len(unset) == 1 else "are"
        raise MissingCredentials(
            f"{' and '.join(unset)} {verb} not set {SERVER}; {platform.missing}"
        )
    return platform.build(settings.platform_env, http)


def platform_factory(settings: Settings, http: httpx.AsyncClient) -> PlatformFactory:
    """A function from platform name to adapter, each built once per process (an
    adapter may cache, e.g. Tembo's repository ids)."""
    made: dict[str, SessionPlatform] = {}

    def make(name: str) -> SessionPlatform:
        platform = made.get(name)
        if platform is None:
            platform = made[name] = build(name, settings, http)
        return platform

    return make
