"""End to end: signed deliveries into the real app, its worker, the GitHub and Tembo fakes."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from bot.messages import MARKER
from bot.settings import Settings
from tests.support import payloads
from tests.support.app import Harness, running
from tests.support.fakes.github import APP_LOGIN, FakeGitHub
from tests.support.fakes.tembo import FakeTembo, schema_errors

pytestmark = pytest.mark.anyio
REPO = "Codertocat/Hello-World"


def give_write(harness: Harness, login: str = "Codertocat", role: str = "write") -> None:
    harness.github.permissions[(REPO, login)] = role


async def test_labeled_issue_becomes_one_session_and_one_link_comment(harness: Harness) -> None:
    give_write(harness)
    response = await harness.deliver("issues", payloads.labeled(title="Fix the login bug!"))
    assert response.status_code == 202
    await harness.settle()

    assert len(harness.tembo.requests) == 1
    body = harness.tembo.requests[0]
    assert schema_errors(body) == []
    assert body["repositories"] == [f"https://github.com/{REPO}"]
    assert body["targetBranch"] == "master"  # the fixture repository's default branch
    assert body["branchName"] == "tembo/1-fix-the-login-bug"
    assert "agent" not in body
    assert "Fix the login bug!" in body["prompt"]
    assert f"https://github.com/{REPO}/issues/1" in body["prompt"]
    assert "pull request" in body["prompt"]

    comments = harness.github.app_comments(REPO, 1)
    assert len(comments) == 1
    session = harness.tembo.sessions[0]
    assert comments[0].body.rstrip().count(session["htmlUrl"]) == 2  # markdown link
    assert MARKER in comments[0].body
    assert (REPO, "issue", 1, "eyes") in harness.github.reactions
    assert await harness.runtime.store.job_counts("delivery") == {"done": 1}


async def test_the_same_delivery_twice_makes_one_session(harness: Harness) -> None:
    give_write(harness)
    delivery = str(uuid.uuid4())
    await harness.deliver("issues", payloads.labeled(), delivery)
    await harness.deliver("issues", payloads.labeled(), delivery)
    await harness.settle()
    assert len(harness.tembo.sessions) == 1
    assert len(harness.github.app_comments()) == 1


async def test_command_comment_dispatches_with_its_text_as_the_request(harness: Harness) -> None:
    give_write(harness)
    give_write(harness, "alice", role="triage")  # comments by triage or more are read
    harness.github.add_comment(
        REPO, 1, "I can reproduce this on Safari.", login="alice", association="MEMBER"
    )
    comment = payloads.comment("/tembo agent=claudeCode:claude-opus-4-5 fix the flaky test")
    await harness.deliver("issue_comment", comment)
    await harness.settle()
    [body] = harness.tembo.requests
    assert body["agent"] == "claudeCode:claude-opus-4-5"
    assert "fix the flaky test" in body["prompt"]
    assert "I can reproduce this on Safari." in body["prompt"]
    assert "@alice" in body["prompt"]
    assert (REPO, "comment", comment["comment"]["id"], "eyes") in harness.github.reactions


async def test_no_agent_is_sent_when_neither_config_nor_tembo_agent_names_one(
    harness: Harness,
) -> None:
    give_write(harness)
    assert harness.runtime.settings.platform_env.get("TEMBO_AGENT") is None
    await harness.deliver("issues", payloads.labeled())
    await harness.settle()
    assert "agent" not in harness.tembo.requests[0]


async def test_agent_comes_from_tembo_agent_when_set(
    settings: Settings, github: FakeGitHub, tembo: FakeTembo
) -> None:
    agent = "claudeCode:claude-opus-4-5"
    async with running(settings.with_platform_env(TEMBO_AGENT=agent), github, tembo) as harness:
        give_write(harness)
        await harness.deliver("issues", payloads.labeled())
        await harness.settle()
    assert tembo.requests[0]["agent"] == agent


@pytest.mark.parametrize(
    "body",
    [
        "```\n/tembo fix it\n```",
        "> /tembo fix it",
        "please /tembo fix it",
        "    /tembo fix it",
    ],
)
async def test_a_command_quoted_or_in_code_does_nothing(harness: Harness, body: str) -> None:
    give_write(harness)
    await harness.deliver("issue_comment", payloads.comment(body))
    await harness.settle()
    assert harness.tembo.requests == []
    assert harness.github.app_comments() == []


async def test_a_bots_command_never_dispatches(harness: Harness) -> None:
    give_write(harness, "renovate[bot]")
    await harness.deliver(
        "issue_comment", payloads.comment("/tembo go", sender="renovate[bot]", sender_type="Bot")
    )
    await harness.settle()
    assert harness.tembo.requests == []
    assert harness.github.app_comments() == []


async def test_the_apps_own_comment_never_dispatches(harness: Harness) -> None:
    give_write(harness)
    await harness.deliver("issue_comment", payloads.comment(f"/tembo go\n{MARKER}"))
    await harness.settle()
    assert harness.tembo.requests == []


async def test_edited_comment_never_dispatches(harness: Harness) -> None:
    give_write(harness)
    response = await harness.deliver(
        "issue_comment", payloads.comment("/tembo go", action="edited")
    )
    assert response.json() == {"status": "ignored"}


async def test_command_on_a_pull_request_does_nothing_by_default(harness: Harness) -> None:
    give_write(harness)
    await harness.deliver("issue_comment", payloads.comment("/tembo go", on_pull_request=True))
    await harness.settle()
    assert harness.tembo.requests == []


async def test_other_labels_do_nothing(harness: Harness) -> None:
    give_write(harness)
    await harness.deliver("issues", payloads.labeled("bug"))
    await harness.settle()
    assert harness.tembo.requests == []
    assert harness.github.calls.count(("POST", f"/repos/{REPO}/issues/1/comments")) == 0


async def test_tembo_400_is_reported_on_the_issue(harness: Harness) -> None:
    give_write(harness)
    harness.tembo.fault = lambda request: httpx.Response(
        400, json={"error": "missing organization ID"}
    )
    await harness.deliver("issues", payloads.labeled())
    await harness.settle()
    [comment] = harness.github.app_comments()
    assert "missing organization ID" in comment.body
    assert "400" in comment.body
    assert (REPO, "issue", 1, "confused") in harness.github.reactions
    assert await harness.runtime.store.job_counts("delivery") == {"failed": 1}


async def test_tembo_5xx_and_429_are_retried_then_succeed_once(harness: Harness) -> None:
    give_write(harness)
    answers = [
        httpx.Response(500, json={"error": "Internal server error"}),
        httpx.Response(429, json={"error": "slow down"}, headers={"retry-after": "0"}),
    ]
    harness.tembo.fault = lambda request: answers.pop(0) if answers else None
    await harness.deliver("issues", payloads.labeled())
    await harness.settle()
    assert len(harness.tembo.sessions) == 1
    [comment] = harness.github.app_comments()
    assert harness.tembo.sessions[0]["htmlUrl"] in comment.body
    assert await harness.runtime.store.job_counts("delivery") == {"done": 1}


async def test_a_lost_answer_is_reconciled_not_repeated(harness: Harness) -> None:
    give_write(harness)
    lost = [True]

    def fault(request: httpx.Request) -> httpx.Response | None:
        if request.method == "POST" and lost:
            lost.clear()
            harness.tembo.create(json.loads(request.content))  # Tembo did the work...
            raise httpx.ReadTimeout("answer lost", request=request)  # ...the answer was lost
        return None

    harness.tembo.fault = fault
    await harness.deliver("issues", payloads.labeled())
    await harness.settle()
    assert len(harness.tembo.sessions) == 1
    [comment] = harness.github.app_comments()
    assert harness.tembo.sessions[0]["htmlUrl"] in comment.body


async def test_tembo_unreachable_until_attempts_run_out_says_so_once(harness: Harness) -> None:
    give_write(harness)
    harness.tembo.fault = lambda request: httpx.Response(503, json={"error": "unavailable"})
    await harness.deliver("issues", payloads.labeled())
    await harness.settle()
    assert await harness.runtime.store.job_counts("delivery") == {"dead": 1}
    [comment] = harness.github.app_comments()
    assert "gave up after" in comment.body
    assert "unavailable" in comment.body


async def test_a_job_that_gives_up_on_its_only_attempt_still_says_so(
    settings: Settings, github: FakeGitHub, tembo: FakeTembo
) -> None:
    # Giving up reads what the job did in this very attempt (its pinned decision), not
    # the journal as it was when the job was claimed.
    tembo.fault = lambda request: httpx.Response(503, json={"error": "unavailable"})
    async with running(settings.replace(max_attempts=1), github, tembo) as harness:
        give_write(harness)
        await harness.deliver("issues", payloads.labeled())
        await harness.settle()
        assert await harness.runtime.store.job_counts("delivery") == {"dead": 1}
    [comment] = github.app_comments()
    assert "gave up after 1 attempts" in comment.body


async def test_installation_token_is_fetched_once_and_reused(harness: Harness) -> None:
    give_write(harness)
    for number in (1, 2, 3):
        await harness.deliver("issues", payloads.labeled(number=number))
    await harness.settle()
    assert len(harness.tembo.sessions) == 3
    assert harness.github.count("POST", r"/app/installations/\d+/access_tokens") == 1


async def test_reader_gets_one_polite_refusal_per_issue(harness: Harness) -> None:
    give_write(harness, role="read")
    await harness.deliver("issue_comment", payloads.comment("/tembo go", comment_id=1))
    await harness.deliver("issue_comment", payloads.comment("/tembo go again", comment_id=2))
    await harness.settle()
    assert harness.tembo.requests == []
    [comment] = harness.github.app_comments()
    assert "write" in comment.body and "@Codertocat" in comment.body


async def test_status_comment_is_written_by_the_app_and_never_retriggers(harness: Harness) -> None:
    give_write(harness)
    await harness.deliver("issues", payloads.labeled())
    await harness.settle()
    [comment] = harness.github.app_comments()
    assert comment.login == APP_LOGIN
    # GitHub sends the app's own comment back as a webhook; it must not dispatch.
    echo = payloads.comment(comment.body, sender=APP_LOGIN, sender_type="Bot")
    await harness.deliver("issue_comment", echo)
    await harness.settle()
    assert len(harness.tembo.sessions) == 1
