"""A fake of Cursor's Cloud Agents API v1 (cursor.com/docs/cloud-agent/api/endpoints:
Create An Agent, Get An Agent, Create A Run, Get A Run, Cancel A Run; authentication and
error bodies from cursor.com/docs/api).

Strict about the request: HTTP Basic with the key as user name and an empty password
(the endpoints page now also accepts Bearer; this fake takes both, as the page says);
a create body with only the documented fields, their types and limits (`prompt.text`
required, `name` up to 100 characters, at most 20 `repos` each with a `url`, `agentId`
of the form `bc-<uuid>` and never with `envVars`); `{prompt: {text}}` for a run; no body
for reads and cancels. Answers with the fields of the page's examples. A second create
with the same `agentId` answers `409 agent_id_conflict`; a run while another is CREATING
or RUNNING `409 agent_busy`; a cancel of an ended run `409 run_not_cancellable`. Errors
are `{error, message}` (cursor.com/docs/api), see `failure`.

Agents move on with `advance(agent_id, status=<run status>, pull_requests=[...])` or a
`script` of such changes, one taken per read of the agent.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

FIELDS: dict[str, tuple[type, ...]] = {
    "prompt": (dict,),
    "model": (dict,),
    "name": (str,),
    "env": (dict,),
    "repos": (list,),
    "workOnCurrentBranch": (bool,),
    "autoCreatePR": (bool,),
    "skipReviewerRequest": (bool,),
    "envVars": (dict,),
    "mcpServers": (list,),
    "customSubagents": (list,),
    "mode": (str,),
    "agentId": (str,),
}
REPO_FIELDS = ("url", "startingRef", "prUrl")
RUN_STATUSES = ("CREATING", "RUNNING", "FINISHED", "ERROR", "CANCELLED", "EXPIRED")
ACTIVE = ("CREATING", "RUNNING")
AGENT_ID = re.compile(r"^bc-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ONE = re.compile(r"^/v1/agents/([^/]+)$")
RUNS = re.compile(r"^/v1/agents/([^/]+)/runs$")
RUN = re.compile(r"^/v1/agents/([^/]+)/runs/([^/]+)$")
CANCEL = re.compile(r"^/v1/agents/([^/]+)/runs/([^/]+)/cancel$")
NOW = "2026-11-26T06:00:00.000Z"


def failure(status: int, code: str, message: str, **headers: str) -> httpx.Response:
    """cursor.com/docs/api's error body: the reason phrase in `error`, words in `message`.
    Where the endpoints page's codes (`agent_id_conflict`, ...) go is not documented; they
    lead the message here."""
    phrase = httpx.codes.get_reason_phrase(status)
    return httpx.Response(
        status, json={"error": phrase, "message": f"{code}: {message}"}, headers=headers
    )


def create_problems(body: Any) -> list[str]:
    if not isinstance(body, dict):
        return ["body must be an object"]
    found = [f"unknown field {key}" for key in body if key not in FIELDS]
    found += [
        f"{key} has the wrong type"
        for key, kinds in FIELDS.items()
        if key in body and not isinstance(body[key], kinds)
    ]
    prompt = body.get("prompt")
    if not isinstance(prompt, dict) or not isinstance(prompt.get("text"), str):
        found.append("prompt.text is required")
    elif set(prompt) - {"text", "images"}:
        found.append("prompt takes only text and images")
    if isinstance(body.get("name"), str) and len(body["name"]) > 100:
        found.append("name must be at most 100 characters")
    model = body.get("model")
    if isinstance(model, dict) and not isinstance(model.get("id"), str):
        found.append("model.id is required")
    repos = body.get("repos")
    if isinstance(repos, list):
        if len(repos) > 20:
            found.append("at most 20 repos")
        for repo in repos:
            if not isinstance(repo, dict) or not isinstance(repo.get("url"), str):
                found.append("repos[].url is required")
            elif set(repo) - set(REPO_FIELDS):
                found.append(f"repos[] takes only {', '.join(REPO_FIELDS)}")
    if "agentId" in body:
        if not AGENT_ID.match(str(body["agentId"])):
            found.append("agentId must be bc-<uuid>")
        if "envVars" in body:
            found.append("agentId cannot be combined with envVars")
    if body.get("mode", "agent") not in ("agent", "plan"):
        found.append("mode must be agent or plan")
    return found


@dataclass
class FakeCursor:
    api_key: str = "crsr_cursor-test-key"
    host: str = "api.cursor.test"
    agents: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    # Every create body that passed validation, in order.
    requests: list[dict[str, Any]] = field(default_factory=list)
    followups: list[tuple[str, str]] = field(default_factory=list)
    cancels: list[tuple[str, str]] = field(default_factory=list)
    reads: list[str] = field(default_factory=list)
    auth_schemes: list[str] = field(default_factory=list)
    fault: Callable[[httpx.Request], httpx.Response | None] | None = None
    script: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def base_url(self) -> str:
        return f"https://{self.host}"

    @property
    def sessions(self) -> list[dict[str, Any]]:
        """The agents, under the name the other fakes use."""
        return self.agents

    def authorized(self, request: httpx.Request) -> bool:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        self.auth_schemes.append(scheme)
        if scheme == "Bearer":
            return value == self.api_key
        if scheme == "Basic":
            try:
                decoded = base64.b64decode(value).decode()
            except ValueError:
                return False
            return decoded == f"{self.api_key}:"
        return False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if not self.authorized(request):
            return failure(401, "unauthorized", "Invalid API key")
        method, path = request.method, request.url.path
        if method == "POST" and path == "/v1/agents":
            body = _json(request)
            found = create_problems(body)
            if found:
                return failure(400, "validation_error", "; ".join(found))
            self.requests.append(body)
        elif method == "POST" and RUNS.match(path):
            body = _json(request)
            prompt = body.get("prompt") if isinstance(body, dict) else None
            if not isinstance(prompt, dict) or not isinstance(prompt.get("text"), str):
                return failure(400, "validation_error", "prompt.text is required")
            if set(body) - {"prompt", "mcpServers", "mode"}:
                return failure(400, "validation_error", "unknown field")
        elif method == "GET" and path == "/v1/agents":
            params = dict(request.url.params)
            if set(params) - {"limit", "cursor", "prUrl", "includeArchived"}:
                return failure(400, "validation_error", "unknown query parameter")
            if not 1 <= int(params.get("limit", "20")) <= 100:
                return failure(400, "validation_error", "limit must be between 1 and 100")
        elif (method == "GET" and (ONE.match(path) or RUN.match(path))) or (
            method == "POST" and CANCEL.match(path)
        ):
            if request.content:
                return failure(400, "validation_error", "this call takes no body")
        else:
            return failure(404, "not_found", "Not found")
        if self.fault is not None:
            injected = self.fault(request)
            if injected is not None:
                return injected
        return self.answer(request)

    def answer(self, request: httpx.Request) -> httpx.Response:
        """Carry the (valid) request out, as Cursor would; tests call it from a fault to
        model an answer lost after the work was done."""
        method, path = request.method, request.url.path
        if method == "POST" and path == "/v1/agents":
            body = _json(request)
            if body.get("agentId") and self.find(body["agentId"]) is not None:
                return failure(409, "agent_id_conflict", "An agent with this id already exists")
            return httpx.Response(200, json=self.create(body))
        if path == "/v1/agents":
            # List Agents: newest first, identity fields only; nextCursor omitted at the end.
            limit = int(request.url.params.get("limit", "20"))
            fields = ("id", "name", "status", "env", "url", "createdAt", "updatedAt", "latestRunId")
            newest = [{k: a[k] for k in fields} for a in reversed(self.agents)]
            return httpx.Response(200, json={"items": newest[:limit]})
        matched = CANCEL.match(path) or RUN.match(path) or RUNS.match(path) or ONE.match(path)
        assert matched is not None
        agent = self.find(matched.group(1))
        if agent is None:
            return failure(404, "agent_not_found", "Agent not found")
        if method == "GET" and ONE.match(path):
            self.reads.append(agent["id"])
            steps = self.script.get(agent["id"])
            if steps:
                self.advance(agent["id"], **steps.pop(0))
            return httpx.Response(200, json=self.agent_view(agent))
        if method == "POST" and RUNS.match(path):
            if self.latest(agent)["status"] in ACTIVE:
                return failure(409, "agent_busy", "Another run is active on this agent")
            if agent["status"] == "ARCHIVED":
                return failure(400, "agent_archived", "Unarchive the agent first")
            self.followups.append((agent["id"], _json(request)["prompt"]["text"]))
            return httpx.Response(200, json={"run": self.run_view(self.new_run(agent))})
        run = next((r for r in self.runs if r["id"] == matched.group(2)), None)
        if run is None or run["agentId"] != agent["id"]:
            return failure(404, "run_not_found", "Run not found")
        if method == "GET":
            return httpx.Response(200, json=self.run_view(run))
        if run["status"] not in ACTIVE:
            return failure(409, "run_not_cancellable", "The run is not active")
        self.cancels.append((agent["id"], run["id"]))
        run["status"] = "CANCELLED"
        agent["status"] = "IDLE"
        return httpx.Response(200, json={"id": run["id"]})

    def find(self, agent_id: str) -> dict[str, Any] | None:
        return next((a for a in self.agents if a["id"] == agent_id), None)

    def latest(self, agent: dict[str, Any]) -> dict[str, Any]:
        return next(r for r in self.runs if r["id"] == agent["latestRunId"])

    def advance(
        self,
        agent_id: str,
        status: str | None = None,
        pull_requests: list[str] | None = None,
        archived: bool | None = None,
    ) -> None:
        """Move an agent's latest run on, and say which pull requests it has opened."""
        agent = self.find(agent_id)
        assert agent is not None, agent_id
        if status is not None:
            assert status in RUN_STATUSES, status
            self.latest(agent)["status"] = status
            agent["status"] = "ACTIVE" if status in ACTIVE else "IDLE"
        if pull_requests is not None:
            repo = agent["repos"][0]["url"].removeprefix("https://")
            agent["git"] = {
                "branches": [
                    {"repoUrl": repo, "branch": "cursor/fix-the-login-bug-a1b2", "prUrl": url}
                    for url in pull_requests
                ]
            }
        if archived:
            agent["status"] = "ARCHIVED"

    def new_run(self, agent: dict[str, Any]) -> dict[str, Any]:
        run = {
            "id": f"run-{uuid.UUID(int=next(self.ids))}",
            "agentId": agent["id"],
            "status": "CREATING",
            "createdAt": NOW,
            "updatedAt": NOW,
        }
        self.runs.append(run)
        agent["latestRunId"] = run["id"]
        agent["status"] = "ACTIVE"
        return run

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        agent_id = body.get("agentId") or f"bc-{uuid.UUID(int=10**9 + next(self.ids))}"
        agent = {
            "id": agent_id,
            "name": body.get("name") or body["prompt"]["text"][:40],
            "status": "ACTIVE",
            "env": {"type": "cloud"},
            "repos": body.get("repos") or [],
            "workOnCurrentBranch": body.get("workOnCurrentBranch", False),
            "autoCreatePR": body.get("autoCreatePR", False),
            "url": f"https://cursor.com/agents/{agent_id}",
            "createdAt": NOW,
            "updatedAt": NOW,
            "latestRunId": "",
            "git": None,
            "prompt": body["prompt"]["text"],
        }
        self.agents.append(agent)
        run = self.new_run(agent)
        return {"agent": self.agent_view(agent), "run": self.run_view(run)}

    def agent_view(self, agent: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in agent.items() if key not in ("git", "prompt")}

    def run_view(self, run: dict[str, Any]) -> dict[str, Any]:
        view = dict(run)
        agent = self.find(run["agentId"])
        if agent is not None and agent["git"]:
            view["git"] = agent["git"]  # "per-agent state, not per-run"
        return view


def _json(request: httpx.Request) -> Any:
    try:
        return json.loads(request.content)
    except ValueError:
        return None
