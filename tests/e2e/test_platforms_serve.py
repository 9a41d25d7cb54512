"""Every platform of the registry through a real `python -m bot serve`.

For each case of tests/support/platform_cases.py (Tembo's seed API and its Public API,
Recoup, Agen, Magnet with and without MAGNET_API_KEY, Devin, Jules, Cursor and the dry
run), one app process is started for the module, wired over loopback HTTP to the GitHub
fake and to the platform's strict contract fake. Signed deliveries go in over HTTP, and
what the fakes saw is checked:

- a label makes exactly one session, on the issue's repository, with the prompt, and one
  status comment with its link;
- when the session opens its pull request, the comment shows it (follow);
- `/tembo <text>` reaches the session; `/tembo stop` stops it where the platform can, and
  says on the issue where it cannot;
- a 5xx, a 429 with Retry-After and a lost answer on the create end in exactly one
  session; on a platform that cannot be asked whether a lost create happened, the create
  is sent at most twice and the issue says a session may exist. Where starting a session
  takes several calls (Recoup, Agen), a lost answer to a later one still ends in one
  session, prompted once.

Following is time-driven (the first poll is 30 s after the session starts). Rather than
wait, a test brings the follow job's due time forward in the app's SQLite store, as the
passing of that time would; everything else goes through the app's HTTP front door.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from bot import platforms as registry
from tests.support import payloads
from tests.support.app import KeyPair
from tests.support.fakes.github import FakeGitHub
from tests.support.fakes.server import (
    ISSUE_LINE,
    AppProcess,
    Delivery,
    FakeServer,
    Processes,
    app_env,
    free_port,
    wait_until,
)
from tests.support.platform_cases import LOSE, PULL, REPO, Case, cases

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

CASES = cases()
ENDED = ("done", "failed", "dead")
WAIT = 15.0  # for any one thing to happen
RETRY_AFTER = 1  # seconds, in the 429's header
# The follow jobs of one dispatch: their payload names its dispatch id (bot/actions/dispatch.py).
FOLLOWING = "kind = 'follow' AND CAST(payload AS TEXT) LIKE ?"
T = TypeVar("T")


def test_every_registered_platform_has_a_case() -> None:
    """A platform added to the registry without a case here fails this test."""
    assert {case.platform for case in CASES} == set(registry.NAMES)
    assert len({case.id for case in CASES}) == len(CASES)


@dataclass
class World:
    """One app process for one case, the fakes it talks to, and the issues used so far."""

    case: Case
    github: FakeGitHub
    github_server: FakeServer
    server: FakeServer  # the platform's fake
    app: AppProcess
    database: Path
    issues: Iterator[int]

    def read(self, look: Callable[[Case], T]) -> T:
        """`look(case)` under the platform fake's lock."""
        return self.server.snapshot(lambda: look(self.case))  # type: ignore[no-any-return]

    def comments(self, number: int) -> list[str]:
        found: list[str] = self.github_server.snapshot(
            lambda: [c.body for c in self.github.app_comments(REPO, number)]
        )
        return found

    def job_state(self, delivery: Delivery) -> str | None:
        with contextlib.closing(sqlite3.connect(self.database, timeout=5)) as db:
            row = db.execute(
                "SELECT state FROM jobs WHERE delivery_id = ?", (delivery.id,)
            ).fetchone()
        return None if row is None else str(row[0])

    def follow_jobs(self, delivery: Delivery) -> int:
        with contextlib.closing(sqlite3.connect(self.database, timeout=5)) as db:
            row = db.execute(
                f"SELECT count(*) FROM jobs WHERE {FOLLOWING}",  # noqa: S608 - a constant
                (f'%"{delivery.dispatch_id}"%',),
            ).fetchone()
        return int(row[0])

    def follow_now(self, delivery: Delivery) -> None:
        """The follow job of this dispatch is due now (its 30 s have passed)."""
        with contextlib.closing(sqlite3.connect(self.database, timeout=5)) as db, db:
            changed = db.execute(
                f"UPDATE jobs SET run_at = 0 WHERE state = 'queued' AND {FOLLOWING}",  # noqa: S608
                (f'%"{delivery.dispatch_id}"%',),
            ).rowcount
        assert changed == 1, f"no queued follow job for {delivery.dispatch_id}"


@pytest.fixture(scope="module", params=CASES, ids=[case.id for case in CASES])
def world(
    request: pytest.FixtureRequest, app_key: KeyPair, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    case: Case = request.param
    folder = tmp_path_factory.mktemp(case.id)
    github = FakeGitHub(public_key=app_key.public, prefix="/api/v3")
    github.permissions[(REPO, "Codertocat")] = "write"
    github.files[(REPO, ".github/tembo.yml")] = f"platform: {case.platform}\n"
    processes = Processes(folder)
    database = folder / "store.db"
    with FakeServer(github) as github_server, FakeServer(case.remote) as server:
        env = app_env(
            private_key=app_key.private,
            github=github,
            github_server=github_server,
            database_url=f"sqlite:///{database}",
            port=free_port(),
            folder=folder,
            **case.env(server.url),  # the platform's key and its fake's address
        )
        app = processes.start(case.id, env)
        try:
            asyncio.run(app.wait_ready(WAIT))  # its error shows the app's last lines
            yield World(case, github, github_server, server, app, database, itertools.count(1))
        finally:
            processes.stop_all()  # before the fakes go away
        assert github_server.errors == [], github_server.errors
        assert server.errors == [], server.errors


@pytest.fixture
async def client(world: World) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False, timeout=10.0) as made:
        yield made
    assert world.app.alive, world.app.tail()  # no test may bring the app down


def comment_delivery(number: int, text: str) -> Delivery:
    body = json.dumps(payloads.comment(text, repo=REPO, number=number)).encode()
    return Delivery(str(uuid.uuid4()), "issue_comment", body)


async def deliver(world: World, client: httpx.AsyncClient, delivery: Delivery) -> str:
    """Send a delivery; the state its job ended in."""
    assert await delivery.send(client, world.app.url) == 202
    try:
        await wait_until(
            lambda: world.job_state(delivery) in ENDED,
            WAIT,
            f"the job of delivery {delivery.id} ended",
            every=0.02,
        )
    except TimeoutError as exc:
        raise AssertionError(f"{exc}; the app said:\n{world.app.tail()}") from exc
    state = world.job_state(delivery)
    assert state is not None
    return state


@dataclass
class Dispatched:
    number: int
    delivery: Delivery
    sessions: list[dict[str, Any]]  # the sessions this dispatch made
    state: str  # its job's


async def label(world: World, client: httpx.AsyncClient) -> Dispatched:
    """Label a new issue and wait until its job ended."""
    before = world.read(lambda case: len(case.sessions()))
    number = next(world.issues)
    delivery = Delivery.labeled(REPO, number)
    state = await deliver(world, client, delivery)
    made = world.read(lambda case: case.sessions()[before:])
    return Dispatched(number, delivery, made, state)


def one_status_comment(world: World, number: int) -> str:
    [body] = world.comments(number)
    return body


def assert_one_linked_session(world: World, dispatched: Dispatched) -> None:
    assert dispatched.state == "done"
    [session] = dispatched.sessions
    assert world.read(lambda case: case.link(session)) in one_status_comment(
        world, dispatched.number
    )


def nothing_was_sent(world: World) -> bool:
    """The dry run's case (and proof that it sent nothing); False for the others."""
    if world.case.create_path is not None:
        return False
    assert world.server.requests == 0
    return True


def nothing_left_the_machine(world: World, dispatched: Dispatched) -> bool:
    """The dry run: no request reached the platform, the preview is on the issue, and
    nothing is followed. False for a platform that sends."""
    if not nothing_was_sent(world):
        return False
    assert dispatched.state == "done"
    body = one_status_comment(world, dispatched.number)
    assert "Dry run" in body and '"branchName": "tembo/' in body
    assert world.case.fake.api_key not in body  # the key is redacted
    assert world.follow_jobs(dispatched.delivery) == 0
    return True


# ---------------------------------------------------------------------------
# The user's path: label, follow, follow-up, stop


async def test_a_label_makes_one_session_on_the_repository_with_the_prompt_and_its_link(
    world: World, client: httpx.AsyncClient
) -> None:
    dispatched = await label(world, client)
    assert dispatched.state == "done"
    if nothing_left_the_machine(world, dispatched):
        return
    body = one_status_comment(world, dispatched.number)
    assert f"{registry.BY_NAME[world.case.platform].display} session started" in body
    [session] = dispatched.sessions
    prompt = world.read(lambda case: case.prompt(session))
    issue = ISSUE_LINE.search(prompt)
    assert issue is not None and (issue[1], int(issue[2])) == (REPO, dispatched.number)
    assert f"tembo-dispatch-id: {dispatched.delivery.dispatch_id}" in prompt
    assert world.read(lambda case: case.repository(session)) in (REPO, None)
    world.read(lambda case: case.check_create(session))
    assert world.read(lambda case: case.link(session)) in body
    assert f"dispatch-id: {dispatched.delivery.dispatch_id}" in body
    assert world.read(lambda case: len(case.remote.sent_at)) >= 1  # faults go to the create


async def test_the_status_comment_follows_the_session_to_its_pull_request(
    world: World, client: httpx.AsyncClient
) -> None:
    dispatched = await label(world, client)
    if nothing_left_the_machine(world, dispatched):
        return
    session_id = world.case.session_id(dispatched.sessions[0])
    world.read(lambda case: case.finish_with_pull_request(session_id))
    world.follow_now(dispatched.delivery)

    def followed() -> bool:
        return "session finished" in one_status_comment(world, dispatched.number)

    await wait_until(followed, WAIT, "the status comment shows the session finished")
    body = one_status_comment(world, dispatched.number)
    if world.case.names_pull_requests:
        assert PULL in body
    else:
        assert "The platform reported no pull request." in body
    world.read(lambda case: case.check_reads())


async def test_a_follow_up_reaches_the_session(world: World, client: httpx.AsyncClient) -> None:
    case = world.case
    dispatched = await label(world, client)
    text = "also cover the Safari case"
    if dispatched.sessions:
        world.read(lambda case: case.before_follow_up(case.session_id(dispatched.sessions[0])))
    before = world.read(lambda case: (len(case.sessions()), case.messages()))
    state = await deliver(world, client, comment_delivery(dispatched.number, f"/tembo {text}"))
    assert state == "done"
    sessions, messages = world.read(lambda case: (len(case.sessions()), case.messages()))
    sent = messages[len(before[1]) :]
    body = world.comments(dispatched.number)
    if nothing_was_sent(world):
        # A dry run started nothing to send to: the command previews a new request.
        assert len(body) == 2 and "Dry run" in body[1] and text in body[1]
        return
    assert sessions == before[0]  # no second session
    if not registry.BY_NAME[case.platform].can_message:
        # Magnet documents no call that adds a message: the issue says what runs.
        assert sent == []
        [reply] = body[1:]
        assert "already working on this issue" in reply
        assert world.read(lambda case: case.link(dispatched.sessions[0])) in reply
        return
    [(session_id, message)] = sent
    assert session_id == case.session_id(dispatched.sessions[0])
    assert text in message
    assert "follow-up from @Codertocat sent to the session" in body[0]


async def test_stop_stops_the_session_where_the_platform_can(
    world: World, client: httpx.AsyncClient
) -> None:
    case = world.case
    dispatched = await label(world, client)
    state = await deliver(world, client, comment_delivery(dispatched.number, "/tembo stop"))
    assert state == "done"
    stopped = world.read(lambda case: case.stopped())
    body = world.comments(dispatched.number)
    if nothing_was_sent(world):
        [reply] = body[1:]
        assert "no running session on this issue to stop" in reply
        return
    session_id = case.session_id(dispatched.sessions[0])
    if registry.BY_NAME[case.platform].can_stop:
        assert session_id in stopped
        assert "session stopped" in body[0] and "stopped by @Codertocat" in body[0]
    else:
        assert session_id not in stopped
        [reply] = [c for c in body[1:] if "cannot be stopped from here" in c]
        link = world.read(lambda case: case.link(dispatched.sessions[0]))
        assert link in reply and registry.BY_NAME[case.platform].display in reply


# ---------------------------------------------------------------------------
# Faults on the create call


async def test_a_5xx_on_create_is_retried_into_one_session(
    world: World, client: httpx.AsyncClient
) -> None:
    unavailable = httpx.Response(503, json={"error": "unavailable"})
    world.read(lambda case: case.remote.arm(unavailable, unavailable))
    dispatched = await label(world, client)
    if nothing_left_the_machine(world, dispatched):
        return
    assert world.read(lambda case: (len(case.remote.sent_at), case.remote.faults)) == (3, [])
    assert_one_linked_session(world, dispatched)


async def test_a_429_waits_for_retry_after_then_makes_one_session(
    world: World, client: httpx.AsyncClient
) -> None:
    limited = httpx.Response(
        429, json={"error": "slow down"}, headers={"Retry-After": str(RETRY_AFTER)}
    )
    world.read(lambda case: case.remote.arm(limited))
    dispatched = await label(world, client)
    if nothing_left_the_machine(world, dispatched):
        return
    first, second = world.read(lambda case: list(case.remote.sent_at))
    # The worker's own backoff here is 0.05 s: only Retry-After explains the wait.
    assert second - first >= RETRY_AFTER - 0.05
    assert_one_linked_session(world, dispatched)


async def test_a_lost_answer_makes_one_session_or_says_one_may_exist(
    world: World, client: httpx.AsyncClient
) -> None:
    case = world.case
    world.read(lambda case: case.remote.arm(*[LOSE] * 5))
    dispatched = await label(world, client)
    if nothing_left_the_machine(world, dispatched):
        return
    lost, creates = world.read(lambda case: (case.remote.lost, len(case.remote.sent_at)))
    assert lost >= 1
    if registry.BY_NAME[case.platform].can_find:
        # Looked up after the loss and found (Devin's lookup is the idempotent create
        # itself, sent again; the others are never sent a create again).
        assert dispatched.state == "done"
        assert creates == (lost + 1 if case.create_is_lookup else 1)
        [session] = dispatched.sessions
        world.read(lambda case: (case.check_lookup(session), case.check_reads()))
        body = one_status_comment(world, dispatched.number)
        assert world.read(lambda case: case.link(session)) in body
    else:
        # Nothing to ask: one resend, then the issue is told.
        assert dispatched.state == "failed"
        assert creates == 2 and len(dispatched.sessions) == 2
        body = one_status_comment(world, dispatched.number)
        assert "cannot be asked whether a session was started" in body
        assert "a session may exist" in body
    world.read(lambda case: case.remote.arm())


async def test_a_lost_answer_on_a_later_step_of_the_create_makes_one_prompted_session(
    world: World, client: httpx.AsyncClient
) -> None:
    """Recoup (sandbox, then the prompt into the chat) and Agen (the prompt as a message)
    start a session in several calls; an answer lost after the first is resent without a
    second session or a second prompt. Elsewhere one call starts the session."""
    steps = world.case.later_steps
    if not steps:
        dispatched = await label(world, client)
        if not nothing_left_the_machine(world, dispatched):
            assert world.read(lambda case: len(case.remote.sent_at)) == 1
        return
    for path in steps:
        world.read(lambda case, path=path: case.remote.arm(LOSE, path=path))
        dispatched = await label(world, client)
        assert world.read(lambda case: case.remote.lost) == 1, path
        assert_one_linked_session(world, dispatched)
        session = dispatched.sessions[0]
        prompts, repository = world.read(
            lambda case, session=session: (case.prompts(session), case.repository(session))
        )
        assert prompts == 1 and repository in (REPO, None), path
    world.read(lambda case: case.remote.arm())


async def test_nothing_is_left_running_after_the_case(world: World) -> None:
    """Every job of the module's deliveries ended, and the app still answers."""
    assert world.app.alive
    with contextlib.closing(sqlite3.connect(world.database, timeout=5)) as db:
        stuck = db.execute(
            "SELECT delivery_id, state FROM jobs WHERE kind = 'delivery' "
            "AND state NOT IN ('done', 'failed', 'dead')"
        ).fetchall()
    assert stuck == []
