"""Session platforms, and choosing one by the name a repository's config gives."""

from __future__ import annotations

import httpx

from bot.ports import MissingCredentials, PlatformFactory, SessionPlatform
from bot.settings import Settings


def platform_factory(settings: Settings, http: httpx.AsyncClient) -> PlatformFactory:
    """A function from platform name to adapter; raises `MissingCredentials` naming the
    variable an operator must set."""

    def make(name: str) -> SessionPlatform:
        if name == "tembo":
            from bot.adapters.platforms.tembo import TemboPlatform

            if settings.tembo_api_key is None:
                raise MissingCredentials(
                    "TEMBO_API_KEY is not set on the server running tembo-dispatch; "
                    "ask its operator to add a Tembo API key"
                )
            return TemboPlatform(
                http,
                settings.tembo_api_key.reveal(),
                settings.tembo_base_url,
                settings.tembo_agent,
            )
        raise MissingCredentials(f"the platform {name!r} is not available on this server")

    return make
