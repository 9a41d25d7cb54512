"""Tembo (seeds 000/001): `POST /session/create` with a Bearer key; the answer's
`htmlUrl` is the link posted back. The reference adapter for the others."""

from __future__ import annotations

from typing import Any

import httpx

from bot.adapters.platforms.transport import send
from bot.ports import PlatformError, Session, SessionRequest

NAME = "tembo"
CREATE_PATH = "/session/create"
# Listing sessions lets a create whose answer was lost be found instead of repeated.
# Tembo's API pages (seeds 000/001, docs.tembo.io) document only /session/create. The
# nearest documented list is its predecessor in the same Stainless SDK, `GET /task/list`
# ?limit (max 100)&page -> {"issues": [...], "meta": {...}} (github.com/tembo/sdk-python
# src/tembo/resources/task.py and types/task_list_response.py; tembo/sdk
# src/resources/task.ts), whose items carry id, title, description, status, createdAt,
# updatedAt and organizationId. /session/list is assumed to be its renamed twin; the
# shapes guessed before (`sessions`, `data`, a bare list) are still read.
LIST_PATH = "/session/list"
LIST_LIMIT = 100
# Newest first, so a lost answer's session is near the top; a burst of dispatches can
# push it past the first page.
LIST_PAGES = 5
# The link's form in seed 001's example, for list items that carry no htmlUrl.
APP_SESSION_URL = "https://app.tembo.io/sessions/{id}"
EXPLAIN = {
    401: "TEMBO_API_KEY was refused; create a new key in Tembo's settings",
    403: "the Tembo key may not create sessions for this organisation",
    404: "TEMBO_BASE_URL does not point at Tembo's API",
}


class TemboPlatform:
    name = NAME
    can_find = True  # its session list is searched for the dispatch id

    def __init__(
        self,
        http: httpx.AsyncClient,
        api_key: str,
        base_url: str = "https://api.tembo.io",
        default_agent: str | None = None,
    ) -> None:
        self._http = http
        self._key = api_key
        self.base_url = base_url.rstrip("/")
        self.default_agent = default_agent

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._key}", "Accept": "application/json"}

    def body(self, request: SessionRequest) -> dict[str, Any]:
        """The create body, valid against seed 001's schema."""
        body: dict[str, Any] = {
            "prompt": request.prompt,
            "repositories": [request.repository.html_url],
            "targetBranch": request.target_branch,
            "branchName": request.branch_name,
        }
        agent = request.agent or self.default_agent
        if agent:
            body["agent"] = agent
        return body

    async def create_session(self, request: SessionRequest) -> Session:
        data = await send(
            self._http,
            "Tembo",
            "POST",
            f"{self.base_url}{CREATE_PATH}",
            headers=self._headers(),
            json=self.body(request),
            explain=EXPLAIN,
        )
        return _session(data)

    async def find_session(self, request: SessionRequest) -> Session | None:
        marker = f"dispatch-id: {request.dispatch_id}"
        for page in range(1, LIST_PAGES + 1):
            data = await send(
                self._http,
                "Tembo",
                "GET",
                f"{self.base_url}{LIST_PATH}",
                headers=self._headers(),
                params={"limit": LIST_LIMIT, "page": page},
                explain=EXPLAIN,
            )
            items: Any = data
            if isinstance(data, dict):
                items = next(
                    (data[key] for key in ("issues", "sessions", "data") if key in data), []
                )
            for item in items if isinstance(items, list) else []:
                if not isinstance(item, dict) or not item.get("id"):
                    continue
                text = f"{item.get('prompt', '')}\n{item.get('description', '')}"
                if marker in text:
                    url = item.get("htmlUrl") or APP_SESSION_URL.format(id=item["id"])
                    return _session({**item, "htmlUrl": url})
            meta = data.get("meta") if isinstance(data, dict) else None
            if not (isinstance(meta, dict) and meta.get("hasNext") is True):
                break
        return None


def _session(data: Any) -> Session:
    if not isinstance(data, dict) or not data.get("id") or not data.get("htmlUrl"):
        raise PlatformError(
            "Tembo answered without a session id and htmlUrl", transient=True, ambiguous=True
        )
    return Session(id=str(data["id"]), url=str(data["htmlUrl"]), status=str(data.get("status", "")))
