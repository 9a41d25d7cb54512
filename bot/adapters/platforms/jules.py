"""Jules: `POST /v1alpha/sessions {prompt, title, sourceContext: {source,
githubRepoContext: {startingBranch}}, automationMode: "AUTO_CREATE_PR"}` with an
`X-Goog-Api-Key`; the answer's `url` is the link posted back.

Sources, read on developers.google.com/jules/api/reference/rest/v1alpha (sessions,
sessions/create, sessions/get, sessions/sendMessage, sources, sources/list) and
jules.google/docs/api/reference (sessions, sources, types):

- the repository: a session names a *source*, the resource name of a connected GitHub
  repository. The docs show two forms (`sources/github-myorg-myrepo` on
  jules.google/docs, `sources/github/owner/repo` in examples elsewhere), so the name is
  not built: it is looked up in `GET /v1alpha/sources` (`pageSize` up to 100,
  `pageToken`), matching `githubRepo.owner`/`githubRepo.repo`, and remembered per
  repository. A repository Jules has no source for is refused for good, with what to do;
- create: `POST /v1alpha/sessions`. `automationMode: AUTO_CREATE_PR` makes Jules open the
  pull request itself; `requirePlanApproval` is left unset ("plans are auto-approved").
  `GitHubRepoContext` documents only `startingBranch`: Jules names its own branch;
- followed: `GET /v1alpha/sessions/{id}`: `state` (QUEUED, PLANNING,
  AWAITING_PLAN_APPROVAL, AWAITING_USER_FEEDBACK, IN_PROGRESS, PAUSED, FAILED,
  COMPLETED) and `outputs[].pullRequest.url`;
- follow-up messages: `POST /v1alpha/sessions/{id}:sendMessage {prompt}`, answered with an
  empty body. No field carries our dispatch id, so a message whose answer was lost may
  arrive twice;
- stop: not offered. The sessions resource documents approvePlan, create, get, list and
  sendMessage, and nothing that stops or deletes a session.

A lost answer. Jules documents no idempotency (no request id, no caller-chosen session
id), so a create whose answer was lost is sent again at most once, and then the issue is
told that a session may exist, as for Recoup. `sessions.list` exists, but the pages do not
say in which order it lists, so it is not used to search.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import httpx

from bot.adapters.platforms.transport import (
    Api,
    follow_explain,
    items,
    probe_read,
    remember,
    state,
)
from bot.events import Repository, dig
from bot.ports import Phase, PlatformError, Session, SessionRequest, SessionState, Steps

NAME = "jules"
LABEL = "Jules"
SESSIONS_PATH = "/v1alpha/sessions"
SESSION_PATH = "/v1alpha/sessions/{id}"
MESSAGE_PATH = "/v1alpha/sessions/{id}:sendMessage"
SOURCES_PATH = "/v1alpha/sources"
SOURCES_PAGE = 100  # sources/list: pageSize 1-100
SOURCES_PAGES = 20  # enough for 2,000 connected repositories
# The link in the create example, for an answer that carries none.
SESSION_URL = "https://jules.google.com/session/{id}"
# types: SessionState.
PHASES: dict[str, Phase] = {
    "QUEUED": "queued",
    "PLANNING": "working",
    "AWAITING_PLAN_APPROVAL": "working",
    "AWAITING_USER_FEEDBACK": "working",
    "IN_PROGRESS": "working",
    "PAUSED": "working",
    "FAILED": "failed",
    "COMPLETED": "finished",
}
REASONS = {
    "AWAITING_USER_FEEDBACK": "Jules is waiting for an answer in the session",
    "AWAITING_PLAN_APPROVAL": "Jules is waiting for its plan to be approved",
    "PAUSED": "the Jules session is paused",
}
EXPLAIN = {
    401: "JULES_API_KEY was refused; create a new key in Jules's settings (jules.google.com)",
    403: "the Jules key may not use this API; create a new key in Jules's settings",
    404: "JULES_BASE_URL does not point at Jules's API (https://jules.googleapis.com)",
}


class JulesPlatform:
    name = NAME
    can_find = False  # no idempotency and no documented order to search a list in
    can_read = True  # GET /v1alpha/sessions/{id}
    can_message = True  # POST /v1alpha/sessions/{id}:sendMessage
    can_stop = False  # no page documents a call that stops a session

    def __init__(
        self,
        http: httpx.AsyncClient,
        api_key: str,
        base_url: str = "https://jules.googleapis.com",
    ) -> None:
        self.client = Api(http, LABEL, base_url, {"X-Goog-Api-Key": api_key})
        self.base_url = self.client.base_url
        # Repository full name (lower case) -> the source's resource name.
        self._sources: OrderedDict[str, str] = OrderedDict()

    def body(self, request: SessionRequest, source: str) -> dict[str, Any]:
        return {
            "prompt": request.prompt,
            "title": request.title,
            "sourceContext": {
                "source": source,
                "githubRepoContext": {"startingBranch": request.target_branch},
            },
            "automationMode": "AUTO_CREATE_PR",
        }

    async def create_session(self, request: SessionRequest, steps: Steps) -> Session:
        source = await self.source(request.repository)
        data = await self.client.post(
            SESSIONS_PATH, json=self.body(request, source), explain=EXPLAIN
        )
        if not isinstance(data, dict) or not data.get("id"):
            raise PlatformError(
                "Jules answered without a session id", transient=True, ambiguous=True
            )
        session_id = str(data["id"])
        return Session(
            id=session_id,
            url=str(data.get("url") or SESSION_URL.format(id=session_id)),
            status=str(data.get("state") or ""),
        )

    async def find_session(self, request: SessionRequest) -> Session | None:
        return None  # nothing to ask: the worker sends again at most once

    async def source(self, repository: Repository) -> str:
        """The resource name of the source for `repository`, from `GET /v1alpha/sources`."""
        key = repository.full_name.lower()
        known = self._sources.get(key)
        if known is not None:
            return known
        token: str | None = None
        for _ in range(SOURCES_PAGES):
            params: dict[str, Any] = {"pageSize": SOURCES_PAGE}
            if token:
                params["pageToken"] = token
            data = await self.client.get(SOURCES_PATH, params=params, explain=EXPLAIN)
            for item in items(data, "sources"):
                repo = item.get("githubRepo")
                if not isinstance(repo, dict) or not item.get("name"):
                    continue
                if f"{repo.get('owner')}/{repo.get('repo')}".lower() == key:
                    remember(self._sources, key, str(item["name"]))
                    return str(item["name"])
            token = dig(data, "nextPageToken")
            if not token:
                break
        raise PlatformError(
            f"Jules has no source for {repository.full_name}: connect the repository to "
            "Jules (install the Jules GitHub app on it at jules.google.com) with the "
            "account whose key is in JULES_API_KEY",
            transient=False,
        )

    async def get_session(self, session_id: str) -> SessionState:
        path, explain = SESSION_PATH.format(id=session_id), _follow_explain(session_id)
        return session_state(await self.client.read(path, explain))

    async def send_message(self, session_id: str, text: str, dispatch_id: str) -> None:
        await self.client.post(
            MESSAGE_PATH.format(id=session_id),
            json={"prompt": text},
            explain=_follow_explain(session_id),
        )

    async def stop_session(self, session_id: str) -> None:
        raise PlatformError(
            "Jules does not offer a way to stop a session through its API; stop it in "
            f"Jules itself ({SESSION_URL.format(id=session_id)})",
            transient=False,
        )


def session_state(data: dict[str, Any]) -> SessionState:
    """A `GET /v1alpha/sessions/{id}` answer, reduced to what the issue shows."""
    pulls = [dig(output, "pullRequest", "url") for output in items(data, "outputs")]
    return state(str(data.get("state") or ""), PHASES, REASONS, pulls)


def _follow_explain(session_id: str) -> dict[int, str]:
    return follow_explain(LABEL, EXPLAIN[401], "JULES_BASE_URL", session_id)


async def probe(http: httpx.AsyncClient, api_key: str, base_url: str) -> tuple[bool, str]:
    """`python -m bot check`: `GET /v1alpha/sources?pageSize=1` (sources/list), the read
    every create starts with."""
    api = JulesPlatform(http, api_key, base_url).client
    return await probe_read(api, SOURCES_PATH, {"pageSize": 1}, "JULES", EXPLAIN[401])
