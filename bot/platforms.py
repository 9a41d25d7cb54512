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
A platform configured by an API key and a base URL takes one call of `keyed`, which
names its variables `NAME_API_KEY` and `NAME_BASE_URL` and builds the adapter from them:

    keyed(
        "devin",
        "Devin",
        "Devin opens a pull request; takes messages",
        DevinPlatform,
        base_url="https://api.devin.ai",
        missing="ask its operator to add a Devin API key",
        probe=devin.probe,
    ),

Others (Tembo, Magnet, dry-run) spell their `Platform` out.

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
    can_find = property(lambda self: bool(self.adapter.can_find))
    can_read = property(lambda self: bool(self.adapter.can_read))
    can_message = property(lambda self: bool(self.adapter.can_message))
    can_stop = property(lambda self: bool(self.adapter.can_stop))

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


def _magnet(env: PlatformEnv, http: httpx.AsyncClient) -> MagnetPlatform:
    return MagnetPlatform(
        http,
        env.require("MAGNET_SESSION_COOKIE"),
        env.require("MAGNET_ORGANIZATION_ID"),
        env.require("MAGNET_BASE_URL"),
        env.require("MAGNET_SESSION_URL"),
        api_key=env.get("MAGNET_API_KEY"),
    )


KeyProbe = Callable[[httpx.AsyncClient, str, str], Awaitable[tuple[bool, str]]]


def keyed(
    name: str,
    display: str,
    usage: str,
    adapter: type[Any],
    *,
    base_url: str,
    missing: str,
    extra: tuple[Variable, ...] = (),
    probe: KeyProbe | None = None,
) -> Platform:
    """The entry of a platform configured by `NAME_API_KEY` and `NAME_BASE_URL` (default
    `base_url`), then `extra`: its adapter takes the client and their values, in order."""
    prefix = name.upper()
    key, base = f"{prefix}_API_KEY", f"{prefix}_BASE_URL"
    variables = (Variable(key, secret=True), Variable(base, default=base_url, url=True), *extra)

    def build(env: PlatformEnv, http: httpx.AsyncClient) -> SessionPlatform:
        made: SessionPlatform = adapter(http, *(env.require(v.name) for v in variables))
        return made

    def check(env: PlatformEnv, http: httpx.AsyncClient) -> Awaitable[tuple[bool, str]]:
        assert probe is not None
        return probe(http, env.require(key), env.require(base))

    return Platform(
        name=name,
        display=display,
        usage=usage,
        adapter=adapter,
        variables=variables,
        required=(key,),
        missing=missing,
        base_url=base,
        build=build,
        probe=check if probe else None,
    )


REGISTRY: tuple[Platform, ...] = (
    Platform(
        "tembo",
        "Tembo",
        "Tembo's coding agents open a pull request",
        TemboPlatform,
        _tembo,
        variables=(
            Variable("TEMBO_API_KEY", secret=True),
            Variable("TEMBO_BASE_URL", default="https://api.tembo.io", url=True),
            Variable("TEMBO_AGENT"),
            Variable("TEMBO_API", default="legacy", choices=("legacy", "v1")),
        ),
        required=("TEMBO_API_KEY",),
        missing="ask its operator to add a Tembo API key",
        base_url="TEMBO_BASE_URL",
        probe=tembo_probe,
    ),
    keyed(
        "recoup",
        "Recoup",
        "Recoup works on the issue's repository in its own sandbox",
        RecoupPlatform,
        base_url="https://api.recoupable.com",
        extra=(
            Variable(
                "RECOUP_CHAT_URL",
                default="https://chat.recoupable.com/sessions/{session_id}/chats/{chat_id}",
            ),
        ),
        missing="ask its operator to add a Recoup API key",
    ),
    keyed(
        "agen",
        "Agen",
        "Agen works in the workspace its key belongs to",
        AgenPlatform,
        base_url="https://api.agenhq.com",
        extra=(Variable("AGEN_SESSION_URL", default="https://app.agenhq.com/sessions/{id}"),),
        missing="ask its operator to add an Agen API key",
    ),
    Platform(
        "magnet",
        "Magnet",
        "Magnet names its own branch and opens a pull request",
        MagnetPlatform,
        _magnet,
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
    ),
    keyed(
        "devin",
        "Devin",
        "Devin works from the prompt (which names the repository) and opens a pull "
        "request; takes messages and stops",
        DevinPlatform,
        base_url="https://api.devin.ai",
        missing="ask its operator to add a Devin v1 API key (apk_user_… or apk_…)",
        probe=devin.probe,
    ),
    keyed(
        "jules",
        "Jules",
        "Jules works on a repository connected to it and opens a pull request; "
        "takes messages, cannot be stopped from here",
        JulesPlatform,
        base_url="https://jules.googleapis.com",
        missing="ask its operator to add a Jules API key",
        probe=jules.probe,
    ),
    keyed(
        "cursor",
        "Cursor",
        "a Cursor cloud agent names its own branch and opens a pull request; takes "
        "messages and stops",
        CursorPlatform,
        base_url="https://api.cursor.com",
        missing="ask its operator to add a Cursor API key",
        probe=cursor.probe,
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
