"""Magnet (seed 004): `POST /api/sessions` `{organizationId, initialMessage, repoUrl,
baseBranch, model}`, answered 201 `{session}`. The link posted back is
`MAGNET_SESSION_URL` with the id.

Magnet's page says API keys cannot create sessions: they must be attributed to a user,
so the call carries a signed-in browser's `__session` cookie (`MAGNET_SESSION_COOKIE`),
which expires. Each refusal therefore says what the operator should do.

After a lost answer, `find_session` reads List Sessions and Get Session
(docs.magnet.run/api-reference/sessions/list-sessions, .../get-session) and looks for the
dispatch id in the first message of this repository's sessions. Those pages document an
API key (`x-api-key`): with `MAGNET_API_KEY` set, every read uses it; without, the reads
try the cookie, and if Magnet refuses it nothing is found and the retry may create a
second session.

Following a session (issue 10), with the same cookie and the same caveat:

- followed: `status` (active, completed or failed) and the pull request's link
  `metadata.prUrl`, read with Get Session (`GET /api/sessions/{id}?organizationId=`,
  docs.magnet.run/api-reference/sessions/get-session; the list-sessions page documents
  `metadata.{branch, prNumber, prUrl, prStatus}`). Magnet gives no failure reason, so
  `reason` stays empty. If Magnet refuses the cookie for reads, `get_session` fails for
  good (401) and says so;
- follow-up messages: not offered. Magnet's pages document no call that adds a message
  to a session (create, list, get and update only);
- stop: not offered. Update Session (`PATCH /api/sessions/{id} {title, status}`) only
  relabels a session; no page says that setting its status stops the agent.
"""

from __future__ import annotations

from typing import Any

import httpx

from bot import ports
from bot.adapters.platforms.transport import Api, items, session_from, state
from bot.events import dig
from bot.ports import Phase, PlatformError, Session, SessionRequest, SessionState, Steps

NAME = "magnet"
LABEL = "Magnet"
SESSIONS_PATH = "/api/sessions"
COOKIE = "__session"
# Get Session's `status`: "active, completed, or failed" (get-session, list-sessions).
PHASES: dict[str, Phase] = {"active": "working", "completed": "finished", "failed": "failed"}
# This repository's sessions whose messages are read before giving up.
CANDIDATES = 10


def explain(organization_id: str) -> dict[int, str]:
    return {
        400: (
            "Magnet refuses sessions created with an API key: MAGNET_SESSION_COOKIE must "
            "hold the __session cookie of a browser signed in to magnet.run"
        ),
        401: (
            "the browser session in MAGNET_SESSION_COOKIE has expired or is invalid: sign "
            "in to magnet.run and copy a fresh __session cookie into MAGNET_SESSION_COOKIE"
        ),
        403: (
            f"the signed-in Magnet user has no access to MAGNET_ORGANIZATION_ID "
            f"({organization_id}); check the id or ask for access to that organization"
        ),
        404: "MAGNET_BASE_URL does not point at Magnet (https://magnet.run)",
    }


class MagnetPlatform:
    name = NAME
    can_find = True  # its session list is searched
    can_read = True  # Get Session
    can_message = False  # no page documents a call that adds a message
    can_stop = False  # no page documents a call that stops the agent

    def __init__(
        self,
        http: httpx.AsyncClient,
        session_cookie: str,
        organization_id: str,
        base_url: str = "https://magnet.run",
        session_url: str = "https://magnet.run/sessions/{id}",
        *,
        api_key: str | None = None,
    ) -> None:
        # Accept the cookie as copied from a browser, with or without its name.
        self._cookie = session_cookie.strip().removeprefix(f"{COOKIE}=")
        self.organization_id = organization_id
        self.client = Api(http, LABEL, base_url, {"Cookie": f"{COOKIE}={self._cookie}"})
        # Reads and lookups: the documented API key when there is one, else the cookie.
        self.reads = Api(http, LABEL, base_url, {"x-api-key": api_key}) if api_key else self.client
        self._reads_by_key = bool(api_key)
        self.base_url = self.client.base_url
        self.session_url = session_url
        self._explain = explain(organization_id)

    def body(self, request: SessionRequest) -> dict[str, Any]:
        """The create body: only fields seed 004 lists. Magnet names the branch itself."""
        body: dict[str, Any] = {
            "organizationId": self.organization_id,
            "initialMessage": request.prompt,
            "repoUrl": request.repository.html_url,
            "baseBranch": request.target_branch,
        }
        if request.agent:
            body["model"] = request.agent
        return body

    async def create_session(self, request: SessionRequest, steps: Steps) -> Session:
        data = await self.client.post(SESSIONS_PATH, json=self.body(request), explain=self._explain)
        return self._session(dig(data, "session"))

    async def find_session(self, request: SessionRequest) -> Session | None:
        ours = [
            item
            for item in items(await self._get(SESSIONS_PATH), "sessions")
            if item.get("id") and _repository(item) == request.repository.full_name
        ]
        for item in ours[:CANDIDATES]:
            session = dig(await self._get(f"{SESSIONS_PATH}/{item['id']}"), "session")
            if isinstance(session, dict) and ports.has_trailer(
                _first_user_message(session), request.dispatch_id
            ):
                return self._session(session)
        return None

    async def get_session(self, session_id: str) -> SessionState:
        session = await self.reads.read(
            f"{SESSIONS_PATH}/{session_id}",
            self._read_explain(session_id),
            inside="session",
            carrying=None,
            params={"organizationId": self.organization_id},
        )
        return session_state(session)

    async def send_message(self, session_id: str, text: str, dispatch_id: str) -> None:
        raise PlatformError(
            "Magnet does not offer a way to send a session a message through its API; "
            f"write it in Magnet itself ({self.session_url.format(id=session_id)})",
            transient=False,
        )

    async def stop_session(self, session_id: str) -> None:
        raise PlatformError(
            "Magnet does not offer a way to stop a session through its API; stop it in "
            f"Magnet itself ({self.session_url.format(id=session_id)})",
            transient=False,
        )

    def _read_explain(self, session_id: str) -> dict[int, str]:
        refused = (
            "Magnet refused MAGNET_API_KEY for reading a session; check the key in "
            "Magnet's settings, or unset it to read with the browser session"
            if self._reads_by_key
            else "Magnet refused the browser session in MAGNET_SESSION_COOKIE for reading "
            "a session (it may have expired, or Magnet may take only API keys for "
            "reads, as its pages document: set MAGNET_API_KEY); sign in to magnet.run and "
            "copy a fresh __session cookie into MAGNET_SESSION_COOKIE"
        )
        return {
            401: refused,
            403: self._explain[403],
            404: f"Magnet does not know session {session_id} (or MAGNET_BASE_URL is wrong)",
        }

    async def _get(self, path: str) -> Any:
        """A read for reconciling; None when Magnet refuses the cookie for it."""
        return await self.reads.lookup(path, params={"organizationId": self.organization_id})

    def _session(self, data: Any) -> Session:
        return session_from(data, "Magnet", self.session_url)


def session_state(session: dict[str, Any]) -> SessionState:
    """A Get Session `session`, reduced to what the issue shows."""
    pull = dig(session, "metadata", "prUrl")
    return state(str(session.get("status") or ""), PHASES, pull_requests=[pull])


def _repository(session: dict[str, Any]) -> Any:
    return dig(session, "metadata", "repository")


def _first_user_message(session: dict[str, Any]) -> str:
    """The text of the session's first user message (Get Session's `messages`)."""
    for message in session.get("messages") or []:
        if not isinstance(message, dict) or message.get("type") != "user":
            continue
        inner = message.get("message")
        content = inner.get("content") if isinstance(inner, dict) else None
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
        return ""
    return ""
