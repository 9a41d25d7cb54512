"""Typed views of the webhook payloads the app acts on.

Only the fields the rules use are read; everything else in a payload is ignored.
A payload that lacks a field we need yields `None` (the delivery is ignored), never
an exception: GitHub's payloads are input like any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

# (event, action) pairs some rule may act on; everything else is answered "ignored"
# at ingest without touching the store.
ACTIONS: dict[str, frozenset[str]] = {
    "issues": frozenset({"labeled", "opened", "closed"}),
    "issue_comment": frozenset({"created"}),
    "installation": frozenset(
        {"created", "deleted", "suspend", "unsuspend", "new_permissions_accepted"}
    ),
    "installation_repositories": frozenset({"added", "removed"}),
}


@dataclass(frozen=True)
class User:
    login: str
    type: str = "User"

    @property
    def is_bot(self) -> bool:
        return self.type == "Bot" or self.login.endswith("[bot]")


@dataclass(frozen=True)
class Repository:
    full_name: str
    html_url: str
    clone_url: str
    default_branch: str
    private: bool = False

    @property
    def owner(self) -> str:
        return self.full_name.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.full_name.split("/", 1)[1]


@dataclass(frozen=True)
class Issue:
    number: int
    title: str
    body: str
    html_url: str
    user: User
    labels: tuple[str, ...] = ()
    is_pull_request: bool = False
    comments: int = 0
    state_reason: str | None = None  # completed | not_planned | reopened, once closed
    updated_at: float = 0.0  # epoch seconds; 0 when the payload did not say


@dataclass(frozen=True)
class Comment:
    id: int
    body: str
    user: User
    html_url: str = ""
    # Epoch seconds (0 when unknown): the prompt reads a discussion as it stood at the
    # trigger, so comments written or edited after it are left out.
    created_at: float = 0.0
    updated_at: float = 0.0
    # GitHub's author_association (OWNER, MEMBER, COLLABORATOR, CONTRIBUTOR, NONE, ...).
    author_association: str = ""


@dataclass(frozen=True)
class IssueEvent:
    action: str
    issue: Issue
    repository: Repository
    sender: User
    installation_id: int
    label: str | None = None


@dataclass(frozen=True)
class CommentEvent:
    action: str
    issue: Issue
    comment: Comment
    repository: Repository
    sender: User
    installation_id: int


@dataclass(frozen=True)
class InstallationEvent:
    event: str
    action: str
    installation_id: int
    account: str
    repositories_added: tuple[str, ...] = ()
    repositories_removed: tuple[str, ...] = ()


Event = IssueEvent | CommentEvent | InstallationEvent


def is_relevant(event: str, action: str | None) -> bool:
    return action is not None and action in ACTIONS.get(event, frozenset())


def dig(data: Any, *keys: str) -> Any:
    """`data[k1][k2]...` of decoded JSON, or None where an object or a key is missing."""
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def timestamp(value: Any) -> float:
    """An ISO 8601 time as GitHub writes it ("2019-05-15T15:20:33Z"), in epoch seconds;
    0.0 for anything else."""
    if not isinstance(value, str) or not value:
        return 0.0
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def comment_from(raw: dict[str, Any], user: User) -> Comment | None:
    """A comment as the webhook and the REST API both show it."""
    if not isinstance(raw.get("id"), int):
        return None
    return Comment(
        id=raw["id"],
        body=_str(raw.get("body")),
        user=user,
        html_url=_str(raw.get("html_url")),
        created_at=timestamp(raw.get("created_at")),
        updated_at=timestamp(raw.get("updated_at")),
        author_association=_str(raw.get("author_association")),
    )


def _user(raw: Any) -> User | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("login"), str):
        return None
    return User(login=raw["login"], type=_str(raw.get("type")) or "User")


def _repository(raw: Any) -> Repository | None:
    if not isinstance(raw, dict):
        return None
    full_name, html_url = raw.get("full_name"), raw.get("html_url")
    if not isinstance(full_name, str) or "/" not in full_name or not isinstance(html_url, str):
        return None
    return Repository(
        full_name=full_name,
        html_url=html_url,
        clone_url=_str(raw.get("clone_url")) or f"{html_url}.git",
        default_branch=_str(raw.get("default_branch")) or "main",
        private=bool(raw.get("private")),
    )


def _issue(raw: Any) -> Issue | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("number"), int):
        return None
    user = _user(raw.get("user"))
    if user is None:
        return None
    labels = tuple(
        label["name"]
        for label in raw.get("labels") or ()
        if isinstance(label, dict) and isinstance(label.get("name"), str)
    )
    return Issue(
        number=raw["number"],
        title=_str(raw.get("title")),
        body=_str(raw.get("body")),
        html_url=_str(raw.get("html_url")),
        user=user,
        labels=labels,
        is_pull_request=isinstance(raw.get("pull_request"), dict),
        comments=raw["comments"] if isinstance(raw.get("comments"), int) else 0,
        state_reason=raw.get("state_reason") if isinstance(raw.get("state_reason"), str) else None,
        updated_at=timestamp(raw.get("updated_at")),
    )


def _installation_id(payload: dict[str, Any]) -> int | None:
    installation = payload.get("installation")
    if isinstance(installation, dict) and isinstance(installation.get("id"), int):
        return int(installation["id"])
    return None


def _repo_names(raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list):
        return ()
    return tuple(r["full_name"] for r in raw if isinstance(r, dict) and "full_name" in r)


def parse(event: str, payload: dict[str, Any]) -> Event | None:
    """The typed view of a payload, or None when no rule acts on it."""
    action = payload.get("action")
    if not isinstance(action, str) or not is_relevant(event, action):
        return None
    installation_id = _installation_id(payload)
    if installation_id is None:
        return None
    if event in ("installation", "installation_repositories"):
        account = _user((payload.get("installation") or {}).get("account"))
        return InstallationEvent(
            event=event,
            action=action,
            installation_id=installation_id,
            account=account.login if account else "",
            repositories_added=_repo_names(
                payload.get("repositories_added") or payload.get("repositories")
            ),
            repositories_removed=_repo_names(payload.get("repositories_removed")),
        )
    issue = _issue(payload.get("issue"))
    repository = _repository(payload.get("repository"))
    sender = _user(payload.get("sender"))
    if issue is None or repository is None or sender is None:
        return None
    if event == "issues":
        label = payload.get("label")
        return IssueEvent(
            action=action,
            issue=issue,
            repository=repository,
            sender=sender,
            installation_id=installation_id,
            label=_str(label.get("name")) if isinstance(label, dict) else None,
        )
    raw_comment = payload.get("comment")
    author = _user(raw_comment.get("user")) if isinstance(raw_comment, dict) else None
    if not isinstance(raw_comment, dict) or not author:
        return None
    comment = comment_from(raw_comment, author)
    if comment is None:
        return None
    return CommentEvent(
        action=action,
        issue=issue,
        comment=comment,
        repository=repository,
        sender=sender,
        installation_id=installation_id,
    )


def job_lock(repo: str, issue: int) -> str:
    """The lock key of an issue's jobs: they run one at a time (so one_session_per_issue
    holds, and a follow-up never overtakes the dispatch it follows)."""
    return f"{repo}#{issue}"


def lock_key(payload: dict[str, Any]) -> str | None:
    """The lock key of a delivery, from the raw payload (ingest has no typed view yet)."""
    repository, issue_data = payload.get("repository"), payload.get("issue")
    repo = repository.get("full_name") if isinstance(repository, dict) else None
    issue = issue_data.get("number") if isinstance(issue_data, dict) else None
    if isinstance(repo, str) and isinstance(issue, int):
        return job_lock(repo, issue)
    return None
