"""Webhook payloads for tests, built from the @octokit/webhooks-examples fixtures.

Each builder loads a real example and changes only the fields it names.
"""

from __future__ import annotations

import copy
import functools
import itertools
import json
import time
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures" / "webhooks"
INSTALLATION_ID = 4242
# Every event GitHub sends is new in time: a fresh `updated_at` (and a fresh comment id),
# which is what tells a new event from a replayed one. Builders stamp one each call.
_COMMENT_IDS = itertools.count(492700400)


def moment() -> str:
    """A timestamp no earlier call returned, as GitHub writes them: now, or a second after
    the last one handed out when that is later (a webhook follows its event)."""
    return stamp()


@functools.cache
def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def fixture(name: str) -> dict[str, Any]:
    return copy.deepcopy(_load(name))


def all_fixtures() -> list[tuple[str, str, dict[str, Any]]]:
    """(event, file name, payload) for every fixture file."""
    return [
        (p.name.split(".")[0], p.name, fixture(p.name)) for p in sorted(FIXTURES.glob("*.json"))
    ]


def _place(
    payload: dict[str, Any], repo: str | None, number: int | None, installation: int
) -> dict[str, Any]:
    payload["installation"] = {
        "id": installation,
        "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMQ==",
    }
    if repo is not None:
        owner, name = repo.split("/")
        payload["repository"].update(
            full_name=repo,
            name=name,
            html_url=f"https://github.com/{repo}",
            clone_url=f"https://github.com/{repo}.git",
        )
        payload["repository"]["owner"]["login"] = owner
    if number is not None:
        issue_repo = payload["repository"]["full_name"]
        payload["issue"].update(
            number=number,
            html_url=f"https://github.com/{issue_repo}/issues/{number}",
        )
    return payload


_LAST = [0.0]


def stamp(at: float | None = None) -> str:
    """A time as GitHub's payloads write it; by default now, each call a later second than
    the one before (a new event never repeats its timestamp)."""
    if at is None:
        at = _LAST[0] = max(float(int(time.time())), _LAST[0] + 1)
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def labeled(
    label: str = "tembo",
    *,
    repo: str | None = None,
    number: int | None = None,
    sender: str = "Codertocat",
    sender_type: str = "User",
    title: str | None = None,
    body: str | None = None,
    comments: int = 0,
    installation: int = INSTALLATION_ID,
    at: float | None = None,
) -> dict[str, Any]:
    """issues.labeled (fixture issues.labeled.1.json) with `label` added."""
    payload = _place(fixture("issues.labeled.1.json"), repo, number, installation)
    payload["label"]["name"] = label
    payload["issue"]["labels"].append(dict(payload["label"]))
    payload["issue"]["updated_at"] = moment()
    payload["sender"].update(login=sender, type=sender_type)
    payload["issue"]["comments"] = comments
    # Labelling touches the issue: its updated_at is the label's time.
    payload["issue"]["updated_at"] = stamp(at)
    if title is not None:
        payload["issue"]["title"] = title
    if body is not None:
        payload["issue"]["body"] = body
    return payload


def opened(labels: tuple[str, ...] = ("tembo",), **place: Any) -> dict[str, Any]:
    """issues.opened (fixture issues.opened.1.json) carrying `labels`."""
    payload = _place(
        fixture("issues.opened.1.json"),
        place.get("repo"),
        place.get("number"),
        place.get("installation", INSTALLATION_ID),
    )
    payload["issue"]["labels"] = [{"id": i, "name": name} for i, name in enumerate(labels)]
    payload["issue"]["created_at"] = payload["issue"]["updated_at"] = moment()
    return payload


def comment(
    body: str,
    *,
    repo: str | None = None,
    number: int | None = None,
    sender: str = "Codertocat",
    sender_type: str = "User",
    action: str = "created",
    on_pull_request: bool = False,
    comment_id: int | None = None,
    comments: int = 1,
    installation: int = INSTALLATION_ID,
    at: float | None = None,
) -> dict[str, Any]:
    """issue_comment.created (fixture issue_comment.created.1.json) with `body`, written
    `at` (now by default)."""
    payload = _place(fixture("issue_comment.created.1.json"), repo, number, installation)
    payload["action"] = action
    when = stamp(at)
    payload["comment"].update(
        body=body, id=comment_id or next(_COMMENT_IDS), created_at=when, updated_at=when
    )
    payload["issue"]["updated_at"] = when
    payload["comment"]["user"].update(login=sender, type=sender_type)
    payload["sender"].update(login=sender, type=sender_type)
    payload["issue"]["comments"] = comments
    if on_pull_request:
        payload["issue"]["pull_request"] = {"url": "https://api.github.com/repos/x/y/pulls/1"}
    else:
        payload["issue"].pop("pull_request", None)
    return payload
