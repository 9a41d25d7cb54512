"""Session platforms, and choosing one by the name a repository's config gives.

One adapter per platform and process: Recoup and Agen remember sessions whose prompt is
still to be sent, and a job's retry must meet the adapter that remembers.
"""

from __future__ import annotations

import httpx

from bot.adapters.platforms.agen import AgenPlatform
from bot.adapters.platforms.dry_run import DryRunPlatform
from bot.adapters.platforms.magnet import MagnetPlatform
from bot.adapters.platforms.recoup import RecoupPlatform
from bot.adapters.platforms.tembo import TemboPlatform
from bot.ports import MissingCredentials, PlatformFactory, SessionPlatform
from bot.settings import Settings

SERVER = "on the server running tembo-dispatch"


def platform_factory(settings: Settings, http: httpx.AsyncClient) -> PlatformFactory:
    """A function from platform name to adapter; raises `MissingCredentials` naming the
    variable an operator must set."""
    made: dict[str, SessionPlatform] = {}

    def make(name: str) -> SessionPlatform:
        platform = made.get(name)
        if platform is None:
            platform = made[name] = build(name, settings, http)
        return platform

    return make


def build(name: str, settings: Settings, http: httpx.AsyncClient) -> SessionPlatform:
    if name == "tembo":
        if settings.tembo_api_key is None:
            raise MissingCredentials(
                f"TEMBO_API_KEY is not set {SERVER}; ask its operator to add a Tembo API key"
            )
        return TemboPlatform(
            http, settings.tembo_api_key.reveal(), settings.tembo_base_url, settings.tembo_agent
        )
    if name == "recoup":
        if settings.recoup_api_key is None:
            raise MissingCredentials(
                f"RECOUP_API_KEY is not set {SERVER}; ask its operator to add a Recoup API key"
            )
        return RecoupPlatform(
            http,
            settings.recoup_api_key.reveal(),
            settings.recoup_base_url,
            settings.recoup_chat_url,
        )
    if name == "agen":
        if settings.agen_api_key is None:
            raise MissingCredentials(
                f"AGEN_API_KEY is not set {SERVER}; ask its operator to add an Agen API key"
            )
        return AgenPlatform(
            http, settings.agen_api_key.reveal(), settings.agen_base_url, settings.agen_session_url
        )
    if name == "magnet":
        missing = [
            variable
            for variable, value in (
                ("MAGNET_SESSION_COOKIE", settings.magnet_session_cookie),
                ("MAGNET_ORGANIZATION_ID", settings.magnet_organization_id),
            )
            if value is None
        ]
        if missing:
            raise MissingCredentials(
                f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set "
                f"{SERVER}. Magnet does not let API keys create sessions (each session must "
                "belong to a signed-in user), so its operator must sign in to magnet.run, "
                "copy the browser's __session cookie into MAGNET_SESSION_COOKIE and the "
                "organization's id into MAGNET_ORGANIZATION_ID"
            )
        assert settings.magnet_session_cookie is not None
        assert settings.magnet_organization_id is not None
        return MagnetPlatform(
            http,
            settings.magnet_session_cookie.reveal(),
            settings.magnet_organization_id,
            settings.magnet_base_url,
            settings.magnet_session_url,
        )
    if name == "dry-run":
        # Needs no key: the key is redacted from the preview and nothing is sent.
        key = settings.tembo_api_key.reveal() if settings.tembo_api_key else ""
        return DryRunPlatform(
            TemboPlatform(http, key, settings.tembo_base_url, settings.tembo_agent)
        )
    raise MissingCredentials(f"the platform {name!r} is not available on this server")
