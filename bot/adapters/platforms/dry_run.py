"""dry-run: nothing leaves the machine. `create_session` answers at once with the request
the default real platform, Tembo, would have been sent (method, URL, headers with the key
redacted, body), which the worker shows in the status comment.

Owns only that picture: the body is `TemboPlatform.body`, so the preview cannot drift
from what the Tembo adapter really sends.
"""

from __future__ import annotations

import json

from bot import __version__
from bot.adapters.platforms.tembo import CREATE_PATH, TemboPlatform
from bot.ports import Session, SessionRequest

NAME = "dry-run"
REDACTED = "Bearer <TEMBO_API_KEY, redacted>"


class DryRunPlatform:
    name = NAME
    can_find = True  # nothing is ever sent, so nothing can be lost

    def __init__(self, tembo: TemboPlatform) -> None:
        self.tembo = tembo

    def preview(self, request: SessionRequest) -> str:
        # The headers transport.send and httpx add, with the adapter's own on top.
        headers = {
            "User-Agent": f"tembo-dispatch/{__version__}",
            **self.tembo._headers(),
            "Content-Type": "application/json",
            "Authorization": REDACTED,
        }
        return json.dumps(
            {
                "method": "POST",
                "url": f"{self.tembo.base_url}{CREATE_PATH}",
                "headers": headers,
                "body": self.tembo.body(request),
            },
            indent=2,
            ensure_ascii=False,
        )

    async def create_session(self, request: SessionRequest) -> Session:
        return Session(
            id=f"dry-run-{request.dispatch_id}",
            url="",
            status="dry-run",
            preview=self.preview(request),
        )

    async def find_session(self, request: SessionRequest) -> Session | None:
        return None  # nothing was ever sent
