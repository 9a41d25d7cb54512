"""A job's journal: what it has already done outside, so a retried or resumed job never
repeats a side effect (a reaction, a comment, a session).

`Journal` is a frozen, typed record; `load`/`dump` are the one place it meets the store's
JSON, including rows written before it had a version. `Progress` holds one job's journal
and writes each change through the store, fenced by the job's lease. Changes are made with
`dataclasses.replace(progress.journal, field=…)`, which mypy checks: a misspelt field is a
type error, never a silent new key.

It must not decide anything: the actions read it and say what changed.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from bot.ports import Job, Session, Store

VERSION = 3
PinKind = Literal["dispatch", "follow_up", "stop", "pick"]


@dataclass(frozen=True)
class Pin:
    """A decision that acts on a platform, recorded so the job's retries carry it out
    unchanged (deciding again would see the job's own doing as facts)."""

    kind: PinKind
    platform: str = ""  # dispatch
    agent: str | None = None  # dispatch
    force: bool = False  # dispatch: an admin's override of a used-up budget
    sessions: tuple[str, ...] = ()  # follow_up, stop, pick (winner first): dispatch ids
    platforms: tuple[str, ...] = ()  # dispatch: a fan-out's platforms (empty: just `platform`)


@dataclass(frozen=True)
class Journal:
    version: int = VERSION
    pin: Pin | None = None
    # Reactions and replies
    reacted: bool = False
    reply_reacted: bool = False
    replied: bool = False
    # The status comment: pending is set before it is posted, so a crash in between makes
    # the next attempt look for it instead of posting a second one.
    status_comment_id: int | None = None
    status_comment_pending: bool = False
    # Creating the session: how many creates may have reached the platform without a
    # definite answer, and when the first was sent (how far back a lookup must read).
    creates_unknown: int = 0
    first_sent_at: float | None = None
    session: Session | None = None
    # The prompt's fence delimiter, drawn once: every resend of a create carries the same
    # prompt (a platform's idempotency compares the request).
    prompt_nonce: str | None = None
    platform_steps: Mapping[str, str] = field(default_factory=dict)
    reported: bool = False
    following: bool = False
    # Follow-ups and stops: the sessions (dispatch ids) a follow-up reached, each once
    messaged: tuple[str, ...] = ()
    stopped: tuple[str, ...] = ()
    told_unstoppable: bool = False
    # Following: polls so far (the interval doubles with each)
    polls: int = 0
    # Fallback: platforms that refused this dispatch for good, and what the comment says.
    tried: tuple[str, ...] = ()
    fell_back: tuple[str, ...] = ()
    # Fan-out (version 3): each platform's own create, journaled apart, by platform name.
    # The job-wide steps (the reaction, the one status comment) stay at the top level.
    fanout: Mapping[str, Journal] = field(default_factory=dict)
    # A fan-out platform that said no for good (or had no budget): why, as its row shows.
    refused: str | None = None
    # Creates on the current platform that failed with a passing fault (5xx, 429, no
    # answer), and the statuses of the last `KEEP_STATUSES` (None: no answer), so that
    # whichever replica runs the last attempt decides the same fallback and says why.
    create_failures: int = 0
    create_statuses: tuple[int | None, ...] = ()


KEEP_STATUSES = 10


def load(data: Mapping[str, Any]) -> Journal:
    """A journal from the store's JSON; rows from before versioning (no `version`) too."""
    known = {f.name for f in dataclasses.fields(Journal)}
    values: dict[str, Any] = {k: v for k, v in data.items() if k in known}
    if int(data.get("version", 1)) < 2:
        # Version 1 kept the pinned decision as a dict under "decision".
        old = data.get("decision")
        if isinstance(old, dict):
            kind = old.get("kind", "dispatch")
            sessions = old.get("sessions") or ([old["session"]] if old.get("session") else [])
            values["pin"] = Pin(
                kind=kind,
                platform=str(old.get("platform") or ""),
                agent=old.get("agent"),
                sessions=tuple(sessions),
            )
    elif isinstance(values.get("pin"), dict):
        pin = values["pin"]
        values["pin"] = Pin(
            **{
                **pin,
                "sessions": tuple(pin.get("sessions") or ()),
                "platforms": tuple(pin.get("platforms") or ()),
            }
        )
    pin = values.get("pin")
    if data.get("message_sent") and isinstance(pin, Pin) and pin.sessions:
        # Before `messaged`, a follow-up went to one session and a flag said it had.
        values["messaged"] = pin.sessions[:1]
    if isinstance(values.get("session"), dict):
        session = values["session"]
        values["session"] = Session(**{**session, "notes": tuple(session.get("notes") or ())})
    for name in ("stopped", "tried", "fell_back", "create_statuses", "messaged"):
        if name in values:
            values[name] = tuple(values[name] or ())
    if "platform_steps" in values:
        values["platform_steps"] = dict(values["platform_steps"] or {})
    if "fanout" in values:
        values["fanout"] = {name: load(part) for name, part in (values["fanout"] or {}).items()}
    values["version"] = VERSION
    return Journal(**values)


def dump(journal: Journal) -> dict[str, Any]:
    data = dataclasses.asdict(journal)
    data["platform_steps"] = dict(journal.platform_steps)
    data["fanout"] = {name: dump(part) for name, part in journal.fanout.items()}
    return data


class Progress:
    """One job's journal, written through to the store on every change.

    Writes are serialised and always save the newest journal, so two steps of one job
    running side by side (the reaction and the create) never lose each other's changes.
    A write after the lease was taken over raises `LostLease`.
    """

    def __init__(self, job: Job, store: Store) -> None:
        self.job = job
        self.store = store
        self.journal = load(job.progress)
        self._lock = asyncio.Lock()

    async def write(self, journal: Journal) -> None:
        self.journal = journal
        async with self._lock:
            data = dump(self.journal)
            await self.store.save_progress(self.job, data)
            # The job's own copy follows, so whoever reads the job after this attempt
            # (giving up on it, at the end of its last attempt) sees what it did.
            self.job.progress.clear()
            self.job.progress.update(data)


class Branch(Progress):
    """One platform's part of a fan-out job: a `Progress` whose journal is kept inside the
    job's, under `fanout[platform]`. Each write saves the whole job journal (through the
    job's lease), computed from its newest state, so branches running side by side never
    lose each other's changes."""

    def __init__(self, parent: Progress, platform: str) -> None:
        self.parent = parent
        self.platform = platform
        self.job = parent.job
        self.store = parent.store
        self.journal = parent.journal.fanout.get(platform) or Journal()

    async def write(self, journal: Journal) -> None:
        self.journal = journal
        whole = self.parent.journal
        fanout = {**whole.fanout, self.platform: journal}
        await self.parent.write(dataclasses.replace(whole, fanout=fanout))


class JournalSteps:
    """`ports.Steps` for a multi-step create, kept in the journal (so in the store): a
    retry on any replica resumes at the step that failed."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress

    def get(self, key: str) -> str | None:
        return self._progress.journal.platform_steps.get(key)

    async def put(self, key: str, value: str) -> None:
        journal = self._progress.journal
        steps = {**journal.platform_steps, key: value}
        await self._progress.write(dataclasses.replace(journal, platform_steps=steps))
