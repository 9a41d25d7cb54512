"""What the worker saw of each repository's configuration, for ingest: the label and the
command it listens for. The worker records them (`note_config`, from `Handler.config`);
ingest reads them (`ConfigWords`) to answer deliveries they prove cannot trigger without
making a job. Pure but for the two store calls; no decision beyond `cannot_trigger`, and
`worth_queueing`, the filter that needs no configuration at all.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bot import commands, messages
from bot.commands import mentions
from bot.events import dig, is_relevant
from bot.ports import Store
from bot.repo_config import RepoConfig

# The worker reads a repository's configuration through a 60-second cache
# (adapters/github.CONFIG_TTL), so it decides on a file up to a minute old; ingest trusts a
# record for a minute more. A changed label or command is honoured within two minutes.
CONFIG_TRUSTED_FOR = 60.0
# How long ingest keeps what it read of the store's records, per repository.
CONFIG_CACHE_SECONDS = 5.0


@dataclass(frozen=True)
class Words:
    """What a repository's configuration listens for: its label and its command."""

    label: str
    command: str


def cannot_trigger(event: str, payload: Mapping[str, Any], words: Words) -> bool:
    """True when `policy.trigger` would ignore this delivery whatever else holds, given
    the repository's label and command: a label event for another label, an issue opened
    without the label, a comment whose first line is not the command."""
    action = payload.get("action")
    if event == "issues" and action == "labeled":
        return bool(dig(payload, "label", "name") != words.label)
    if event == "issues" and action == "opened":
        labels = dig(payload, "issue", "labels")
        names = [dig(x, "name") if isinstance(x, dict) else x for x in labels or ()]
        return words.label not in names
    if event == "issue_comment" and action == "created":
        body = dig(payload, "comment", "body")
        if not isinstance(body, str):
            return False
        try:
            return commands.parse(body, words.command) is None
        except commands.CommandError:
            return False  # malformed: the worker answers with the usage
    return False


# -- the worker's side: what configuration it saw, recorded for ingest ----------------

_noted: weakref.WeakKeyDictionary[Store, dict[str, tuple[Words, float]]] = (
    weakref.WeakKeyDictionary()
)


async def note_config(
    store: Store, installation_id: int, repo: str, config: RepoConfig, now: float
) -> None:
    """Record the label and command a repository's configuration uses, so that ingest
    (in another process) can answer deliveries that cannot trigger without a job.
    Written again only when it changed or a third of its trust has passed."""
    seen = _noted.setdefault(store, {})
    words = Words(config.label, config.command)
    last = seen.get(repo)
    if last is not None and last[0] == words and now - last[1] < CONFIG_TRUSTED_FOR / 3:
        return
    await store.record_config_words(installation_id, repo, words.label, words.command, now)
    seen[repo] = (words, now)


class ConfigWords:
    """Ingest's view of the records above, kept a few seconds per repository."""

    def __init__(self, store: Store, clock: Callable[[], float]) -> None:
        self.store = store
        self.clock = clock
        self._cache: dict[str, tuple[Words | None, float]] = {}

    async def get(self, repo: str) -> Words | None:
        now = self.clock()
        cached = self._cache.get(repo)
        if cached is None or now - cached[1] >= CONFIG_CACHE_SECONDS:
            # Kept here a few seconds more: read only what stays trusted that long.
            since = now - (CONFIG_TRUSTED_FOR - CONFIG_CACHE_SECONDS)
            found = await self.store.config_words(repo, since)
            words = None if found is None else Words(*found)
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[repo] = cached = (words, now)
        return cached[0]


def worth_queueing(event: str, payload: dict[str, Any]) -> bool:
    """Cheap, config-free filter at ingest: False only for deliveries no configuration
    could act on, so they are answered "ignored" without a write."""
    action = payload.get("action")
    if not isinstance(action, str) or not is_relevant(event, action):
        return False
    if event == "issue_comment":
        comment = payload.get("comment")
        body = comment.get("body") if isinstance(comment, dict) else None
        # Every command starts with "/" (repo_config enforces it); the marker means our own.
        return isinstance(body, str) and mentions(body, "/") and not messages.has_marker(body)
    if event == "issues" and action == "opened":
        issue = payload.get("issue")
        return isinstance(issue, dict) and bool(issue.get("labels"))
    if event == "issues" and action == "closed":
        issue = payload.get("issue")
        return isinstance(issue, dict) and issue.get("state_reason") == "not_planned"
    return True
