"""Cursor cloud agents: `POST /v1/agents {prompt: {text}, repos: [{url, startingRef}],
autoCreatePR: true, agentId, name}` with the API key as the Basic user name; the answer's
`agent.url` is the link posted back.

Source: cursor.com/docs/cloud-agent/api/endpoints (the Cloud Agents API v1, "public
beta"; OpenAPI at cursor.com/docs-static/cloud-agents-openapi.yaml) and
cursor.com/docs/api (authentication, error bodies `{error, message}`):

- auth: the endpoints page says the API "accepts both Basic and Bearer authentication"
  (an earlier version of the same page, and cursor.com/docs/api, say Basic only), so
  Basic with the key as user name and an empty password, which both versions document;
- create: `POST /v1/agents` makes the durable agent and enqueues its first run; answers
  `{agent: {id, url, status, ...}, run: {id, status, ...}}`. The repository is
  `repos[0].url` with `startingRef`; the page documents no field for the branch the
  agent pushes to (it pushes to a new `cursor/...` branch), so our branch name is not
  sent. `model: {id}` carries an agent named in the config;
- followed: `GET /v1/agents/{id}` gives `latestRunId` (and `status`: ACTIVE, IDLE,
  ARCHIVED); `GET /v1/agents/{id}/runs/{runId}` gives the run's `status` (CREATING,
  RUNNING, FINISHED, ERROR, CANCELLED, EXPIRED) and `git.branches[].prUrl`, which the page
  says is the agent's state, the same on every run;
- follow-up messages: `POST /v1/agents/{id}/runs {prompt: {text}}`, a new run on the same
  agent. Cursor answers `409 agent_busy` while another run is CREATING or RUNNING, which
  the worker retries. No field carries our dispatch id, so a message whose answer was
  lost may arrive twice;
- stop: `POST /v1/agents/{id}/runs/{runId}/cancel` on the latest run. Cursor answers
  `409 run_not_cancellable` when that run has already ended: nothing is left to stop.

A lost answer. The create takes a client-supplied `agentId` (`bc-<uuid>`): "re-POSTing the
same agentId returns 409 agent_id_conflict rather than creating a duplicate". The
adapter derives the id from the dispatch id, so `find_session` reads
`GET /v1/agents/{agentId}` (404: not created) and a 409 on create means the agent is
already there; a resend never makes a second agent. (`agentId` "cannot be combined with
`envVars`", which this adapter does not send.)

Where Cursor's docs and the plan differ: the plan named the v0 fields (`source.repository`/
`ref`, `target.autoCreatePr`, `target.prUrl`). The endpoints page now documents v1 and
keeps v0 as "legacy"; v1 names them `repos[].url`/`startingRef`, `autoCreatePR` and
`git.branches[].prUrl`, and adds the idempotent `agentId` that v0 lacks, so a lost answer
is found, not resent "at most once".
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

import httpx

from bot.adapters.platforms.transport import (
    Api,
    follow_explain,
    items,
    ours_on_conflict,
    probe_read,
    state,
)
from bot.events import dig
from bot.ports import Phase, PlatformError, Session, SessionRequest, SessionState, Steps

NAME = "cursor"
LABEL = "Cursor"
AGENTS_PATH = "/v1/agents"
AGENT_PATH = "/v1/agents/{id}"
RUNS_PATH = "/v1/agents/{id}/runs"
RUN_PATH = "/v1/agents/{id}/runs/{run}"
CANCEL_PATH = "/v1/agents/{id}/runs/{run}/cancel"
NAME_LIMIT = 100  # `name`: "Maximum 100 characters"
# The link in the page's examples, for an answer that carries none.
AGENT_URL = "https://cursor.com/agents/{id}"
# Get A Run: the run's `status`.
PHASES: dict[str, Phase] = {
    "CREATING": "queued",
    "RUNNING": "working",
    "FINISHED": "finished",
    "ERROR": "failed",
    "CANCELLED": "stopped",
    "EXPIRED": "stopped",
}
REASONS = {
    "CANCELLED": "the Cursor run was cancelled",
    "EXPIRED": "the Cursor run expired",
    "ARCHIVED": "the Cursor agent was archived",
}
EXPLAIN = {
    401: "CURSOR_API_KEY was refused; create a new key in Cursor's dashboard (API Keys)",
    403: "the Cursor key may not launch cloud agents for this repository",
    404: "CURSOR_BASE_URL does not point at Cursor's API (https://api.cursor.com)",
}


def agent_id(dispatch_id: str) -> str:
    """The agent id this dispatch asks for: the same on every send, unique per dispatch."""
    return f"bc-{uuid.uuid5(uuid.NAMESPACE_URL, f'tembo-dispatch:{dispatch_id}')}"


class CursorPlatform:
    name = NAME
    can_find = True  # the agent id is ours: GET /v1/agents/{id}
    can_read = True  # the agent's latest run
    can_message = True  # POST /v1/agents/{id}/runs
    can_stop = True  # POST /v1/agents/{id}/runs/{runId}/cancel

    def __init__(
        self, http: httpx.AsyncClient, api_key: str, base_url: str = "https://api.cursor.com"
    ) -> None:
        # Basic, the key as the user name and an empty password.
        basic = base64.b64encode(f"{api_key}:".encode()).decode()
        self.client = Api(http, LABEL, base_url, {"Authorization": f"Basic {basic}"})
        self.base_url = self.client.base_url

    def body(self, request: SessionRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "prompt": {"text": request.prompt},
            "name": request.title[:NAME_LIMIT],
            "repos": [{"url": request.repository.html_url, "startingRef": request.target_branch}],
            "autoCreatePR": True,
            "agentId": agent_id(request.dispatch_id),
        }
        if request.agent:
            body["model"] = {"id": request.agent}
        return body

    async def create_session(self, request: SessionRequest, steps: Steps) -> Session:
        # 409 agent_id_conflict: an earlier send made it. (409 is also Cursor's word for
        # other conflicts; reading the agent back tells them apart.)
        return await ours_on_conflict(self._create(request), lambda: self.find_session(request))

    async def _create(self, request: SessionRequest) -> Session:
        data = await self.client.post(AGENTS_PATH, json=self.body(request), explain=EXPLAIN)
        agent = dig(data, "agent")
        if not isinstance(agent, dict) or not agent.get("id"):
            raise PlatformError(
                "Cursor answered without an agent id", transient=True, ambiguous=True
            )
        return self._session(agent, dig(data, "run", "status"))

    async def find_session(self, request: SessionRequest) -> Session | None:
        wanted = agent_id(request.dispatch_id)
        try:
            agent = await self._agent(wanted, EXPLAIN)
        except PlatformError as exc:
            if exc.status == 404:
                return None
            raise
        return self._session(agent, agent.get("status"))

    async def get_session(self, session_id: str) -> SessionState:
        explain = _follow_explain(session_id)
        agent = await self._agent(session_id, explain)
        archived = agent.get("status") == "ARCHIVED"
        run_id = agent.get("latestRunId")
        if not run_id:
            if archived:
                return SessionState("stopped", reason=REASONS["ARCHIVED"], raw_status="ARCHIVED")
            return SessionState("queued", raw_status=str(agent.get("status") or ""))
        path = RUN_PATH.format(id=session_id, run=run_id)
        current = run_state(await self.client.read(path, explain, carrying="status", what="run"))
        if archived and not current.terminal:
            return SessionState(
                "stopped",
                current.pull_requests,
                REASONS["ARCHIVED"],
                f"{current.raw_status} (ARCHIVED)",
            )
        return current

    async def send_message(self, session_id: str, text: str, dispatch_id: str) -> None:
        await self.client.post(
            RUNS_PATH.format(id=session_id),
            json={"prompt": {"text": text}},
            explain={
                **_follow_explain(session_id),
                409: "the agent is still busy with its previous run; the message will be sent "
                "when that run ends",
            },
        )

    async def stop_session(self, session_id: str) -> None:
        explain = _follow_explain(session_id)
        agent = await self._agent(session_id, explain)
        run_id = agent.get("latestRunId")
        if not run_id:
            return  # no run was ever started: nothing to stop
        try:
            await self.client.post(CANCEL_PATH.format(id=session_id, run=run_id), explain=explain)
        except PlatformError as exc:
            if exc.status != 409:  # run_not_cancellable: the run has already ended
                raise

    async def _agent(self, agent_id: str, explain: dict[int, str]) -> dict[str, Any]:
        return await self.client.read(AGENT_PATH.format(id=agent_id), explain, what="agent")

    def _session(self, agent: dict[str, Any], status: Any) -> Session:
        agent_id = str(agent["id"])
        return Session(
            id=agent_id,
            url=str(agent.get("url") or AGENT_URL.format(id=agent_id)),
            status=str(status or ""),
        )


def run_state(run: dict[str, Any]) -> SessionState:
    """A `GET /v1/agents/{id}/runs/{runId}` answer, reduced to what the issue shows."""
    pulls = [branch.get("prUrl") for branch in items(dig(run, "git"), "branches")]
    return state(str(run.get("status") or ""), PHASES, REASONS, pulls)


def _follow_explain(session_id: str) -> dict[int, str]:
    return follow_explain(LABEL, EXPLAIN[401], "CURSOR_BASE_URL", session_id, noun="agent")


async def probe(http: httpx.AsyncClient, api_key: str, base_url: str) -> tuple[bool, str]:
    """`python -m bot check`: `GET /v1/agents?limit=1` (List Agents), a read that takes
    the same key as a create."""
    api = CursorPlatform(http, api_key, base_url).client
    return await probe_read(api, AGENTS_PATH, {"limit": 1}, "CURSOR", EXPLAIN[401])
