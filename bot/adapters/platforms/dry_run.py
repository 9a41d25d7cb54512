"""dry-run: nothing leaves the machine. `create_session` answers at once with the request
the default real platform, Tembo, would have been sent (method, URL, headers with the key
redacted, body), which the worker shows in the status comment.

Owns only that picture: the body is `TemboPlatform.body`, so the preview cannot drift
from what the Tembo adapter really sends.

A dry-run session was never started, so there is nothing to follow: it cannot be read,
sent a message or stopped, and each of those calls fails for good.
"""

from __future__ import annotations

import json

from bot import __version__
from bot.adapters.platforms.tembo import CREATE_PATH, TemboPlatform
from bot.ports import PlatformError, Session, SessionRequest, SessionState, Steps

NAME = "dry-run"
REDACTED = "Bearer <TEMBO_API_KEY, redacted>"


class DryRunPlatform:
    name = NAME
    can_find = True  # nothing is ever sent, so nothing can be lost
    # Nothing was started, so nothing can be followed.
    can_read = False
    can_message = False
    can_stop = False

    def __init__(self, tembo: TemboPlatform) -> None:
        self.tembo = tembo

    def preview(self, request: SessionRequest) -> str:
        # The headers transport.send and httpx add, with the adapter's own on top.
        headers = {
            "User-Agent": f"tembo-dispatch/{__version__}",
            **self.tembo.client.headers,
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

    async def create_session(self, request: SessionRequest, steps: Steps) -> Session:
        return Session(
            id=f"dry-run-{request.dispatch_id}",
            url="",
            status="dry-run",
            preview=self.preview(request),
        )

    async def find_session(self, request: SessionRequest) -> Session | None:
        return None  # nothing was ever sent

    async def get_session(self, session_id: str) -> SessionState:
        raise _nothing_to_follow("read")

    async def send_message(self, session_id: str, text: str, dispatch_id: str) -> None:
        raise _nothing_to_follow("send a message to")

    async def stop_session(self, session_id: str) -> None:
        raise _nothing_to_follow("stop")


def _nothing_to_follow(action: str) -> PlatformError:
    return PlatformError(
        f"dry-run does not offer a session to {action}: nothing was sent, so no session "
        "was started",
        transient=False,
    )
