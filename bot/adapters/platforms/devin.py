"""Devin: `POST /v1/sessions {prompt, idempotent: true, title}` with a Bearer key; the
answer's `url` is the link posted back.

Sources, read on docs.devin.ai (the v1 pages and their OpenAPI, `v1-openapi.yaml`):
api-reference/v1/sessions/create-a-new-devin-session, .../retrieve-details-about-an-
existing-session, .../send-a-message-to-an-existing-devin-session and
.../terminate-a-session.

- create: `POST /v1/sessions`. Body fields documented: `prompt` (required), `idempotent`
  (default false), `title`, `tags`, `knowledge_ids`, `secret_ids`, `session_secrets`,
  `playbook_id`, `snapshot_id`, `max_acu_limit`, `structured_output_schema`, `unlisted`.
  No field names a repository or a branch, so the repository goes in the prompt (the
  prompt already names it; `body` adds a first line only if it does not). Answers
  `{session_id, url, is_new_session}`; `is_new_session` is "only present if
  idempotent=true";
- followed: `GET /v1/sessions/{session_id}`: `status_enum` (working, blocked, expired,
  finished, suspend_requested, suspend_requested_frontend, resume_requested,
  resume_requested_frontend, resumed) and `pull_request.url` (null when no pull request);
- follow-up messages: `POST /v1/sessions/{session_id}/message {message}`. The body has no
  field for our dispatch id, so a message whose answer was lost may arrive twice;
- stop: `DELETE /v1/sessions/{session_id}` ("the session must not already be in an exited
  state"; what Devin answers when it is, the page does not say).

A lost answer. `idempotent: true` asks Devin itself not to start a second session for the
same create, so sending the create again is safe and gives back the first session
(`is_new_session: false`). That is what `find_session` does: it re-sends the same
idempotent create, and `can_find` is True because that call does see a session an earlier
process started. The worker therefore never stops at "sent twice, a session may exist".
What Devin compares to decide that two creates are the same is not documented; every
send for one dispatch carries the same body, byte for byte (the prompt ends with the
dispatch id), so whatever Devin keys on matches.

Where Devin's docs and the plan differ: docs.devin.ai now calls v1 (and v2) "legacy",
working "during the deprecation period", and points new integrations at
`POST /v3/organizations/sessions` with service-user tokens (`cog_`). The v3 create
documents no `idempotent` field (api-reference/v3/sessions/post-organizations-sessions),
so only v1 offers a create that is safe to repeat; this adapter stays on v1, and
`DEVIN_API_KEY` must be a v1 key (`apk_user_…` personal or `apk_…` service key).
"""

from __future__ import annotations

from typing import Any

import httpx

from bot.adapters.platforms.transport import Api, follow_explain, probe_read, state
from bot.events import dig
from bot.ports import Phase, PlatformError, Session, SessionRequest, SessionState, Steps

NAME = "devin"
LABEL = "Devin"
SESSIONS_PATH = "/v1/sessions"
SESSION_PATH = "/v1/sessions/{id}"
MESSAGE_PATH = "/v1/sessions/{id}/message"
# retrieve-details-about-an-existing-session: `status_enum`. Only `finished` and
# `expired` end a session; `blocked` waits for the user, the suspend/resume states come
# and go, and a message wakes a suspended session.
PHASES: dict[str, Phase] = {
    "working": "working",
    "blocked": "working",
    "resumed": "working",
    "resume_requested": "working",
    "resume_requested_frontend": "working",
    "suspend_requested": "working",
    "suspend_requested_frontend": "working",
    "finished": "finished",
    "expired": "stopped",
}
REASONS = {
    "expired": "the Devin session expired",
    "blocked": "Devin is waiting for an answer in the session",
}
CREATE_EXPLAIN = {
    401: (
        "DEVIN_API_KEY was refused; Devin's v1 API takes a personal (apk_user_…) or "
        "service (apk_…) API key from Devin's settings, not a service-user token (cog_…)"
    ),
    403: "the Devin key may not create sessions in this organization",
    404: "DEVIN_BASE_URL does not point at Devin's API (https://api.devin.ai)",
}


class DevinPlatform:
    name = NAME
    can_find = True  # the idempotent create, sent again, answers the first session
    can_read = True  # GET /v1/sessions/{session_id}
    can_message = True  # POST /v1/sessions/{session_id}/message
    can_stop = True  # DELETE /v1/sessions/{session_id}

    def __init__(
        self, http: httpx.AsyncClient, api_key: str, base_url: str = "https://api.devin.ai"
    ) -> None:
        self.client = Api(http, LABEL, base_url, {"Authorization": f"Bearer {api_key}"})
        self.base_url = self.client.base_url

    def body(self, request: SessionRequest) -> dict[str, Any]:
        """The create body. The same for every send of one dispatch, which is what makes
        `idempotent` cover a resend."""
        prompt = request.prompt
        if request.repository.html_url not in prompt:
            prompt = f"Repository: {request.repository.html_url}\n\n{prompt}"
        return {"prompt": prompt, "idempotent": True, "title": request.title}

    async def create_session(self, request: SessionRequest, steps: Steps) -> Session:
        return await self._create(request)  # one call: nothing to journal

    async def _create(self, request: SessionRequest) -> Session:
        data = await self.client.post(
            SESSIONS_PATH, json=self.body(request), explain=CREATE_EXPLAIN
        )
        if not isinstance(data, dict) or not data.get("session_id") or not data.get("url"):
            raise PlatformError(
                "Devin answered without a session_id and url", transient=True, ambiguous=True
            )
        return Session(id=str(data["session_id"]), url=str(data["url"]))

    async def find_session(self, request: SessionRequest) -> Session | None:
        # Devin keeps one session per idempotent create: asking again is the lookup.
        return await self._create(request)

    async def get_session(self, session_id: str) -> SessionState:
        path, explain = SESSION_PATH.format(id=session_id), _follow_explain(session_id)
        return session_state(await self.client.read(path, explain, carrying="session_id"))

    async def send_message(self, session_id: str, text: str, dispatch_id: str) -> None:
        await self.client.post(
            MESSAGE_PATH.format(id=session_id),
            json={"message": text},
            explain=_follow_explain(session_id),
        )

    async def stop_session(self, session_id: str) -> None:
        await self.client.call(
            "DELETE", SESSION_PATH.format(id=session_id), explain=_follow_explain(session_id)
        )


def session_state(data: dict[str, Any]) -> SessionState:
    """A `GET /v1/sessions/{session_id}` answer, reduced to what the issue shows."""
    raw = str(data.get("status_enum") or data.get("status") or "")
    return state(raw, PHASES, REASONS, [dig(data, "pull_request", "url")])


def _follow_explain(session_id: str) -> dict[int, str]:
    return follow_explain(LABEL, CREATE_EXPLAIN[401], "DEVIN_BASE_URL", session_id)


async def probe(http: httpx.AsyncClient, api_key: str, base_url: str) -> tuple[bool, str]:
    """`python -m bot check`: `GET /v1/sessions?limit=1` (list-sessions), a read that
    takes the same key as a create."""
    api = DevinPlatform(http, api_key, base_url).client
    return await probe_read(api, SESSIONS_PATH, {"limit": 1}, "DEVIN", CREATE_EXPLAIN[401])
