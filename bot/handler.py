"""What one delivery does: the I/O around `policy`, step by step, resumable.

The worker calls `Handler.handle(job)`. Each outside effect (reaction, status comment,
session) is recorded in the job's progress before and after it happens, so a job that
is retried or resumed after a crash continues where it stopped and never repeats a
comment or a session.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot import events, messages, policy, prompt
from bot.events import CommentEvent, InstallationEvent, IssueEvent, Repository
from bot.logs import log
from bot.metrics import Metrics
from bot.ports import (
    GitHub,
    GitHubError,
    Job,
    MissingCredentials,
    PlatformError,
    PlatformFactory,
    RemoteError,
    Session,
    SessionPlatform,
    SessionRecord,
    SessionRequest,
    Store,
)
from bot.repo_config import ORG_REPO, PATH, ConfigError, RepoConfig, merge, parse_layer
from bot.sanitize import clean

logger = logging.getLogger("bot.handler")


@dataclass
class Outcome:
    state: str  # done | failed | again (a recurring job, due again at run_at)
    detail: str = ""
    run_at: float | None = None


# Following a session: polls 30 s after it starts, then at doubling intervals up to
# 15 minutes, for at most 7 days.
FOLLOW_FIRST = 30.0
FOLLOW_CAP = 15 * 60.0
FOLLOW_FOR = 7 * 24 * 3600.0


class Progress:
    """A job's recorded steps, saved to the store on every change."""

    def __init__(self, job: Job, store: Store) -> None:
        self.job = job
        self.store = store

    def get(self, key: str) -> Any:
        return self.job.progress.get(key)

    async def set(self, **values: Any) -> None:
        self.job.progress.update(values)
        await self.store.save_progress(self.job.id, self.job.progress)


def dispatch_id(job: Job) -> str:
    return f"gh-{job.delivery_id}"


def job_lock(repo: str, issue: int) -> str:
    return f"{repo}#{issue}"


def lock_key(payload: dict[str, Any]) -> str | None:
    """Jobs about the same issue run one at a time (so one_session_per_issue holds)."""
    repository, issue_data = payload.get("repository"), payload.get("issue")
    repo = repository.get("full_name") if isinstance(repository, dict) else None
    issue = issue_data.get("number") if isinstance(issue_data, dict) else None
    if isinstance(repo, str) and isinstance(issue, int):
        return job_lock(repo, issue)
    return None


class Handler:
    def __init__(
        self,
        github: GitHub,
        store: Store,
        platforms: PlatformFactory,
        defaults: RepoConfig,
        clock: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
    ) -> None:
        self.github = github
        self.store = store
        self.platforms = platforms
        self.defaults = defaults
        self.clock = clock
        self.metrics = metrics

    # -- configuration ------------------------------------------------------

    async def config(self, installation_id: int, repo: Repository) -> RepoConfig:
        """Operator defaults, then the org's `.github` repository, then the repository's own
        file (default branch); raises `ConfigError` for a file with problems."""
        layers = []
        sources = [f"{repo.owner}/{ORG_REPO}", repo.full_name]
        if repo.name == ORG_REPO:
            sources = sources[1:]
        for source in sources:
            text = await self.github.read_file(installation_id, source, PATH)
            if text is not None:
                layers.append(parse_layer(text, f"{source}:{PATH}"))
        return merge(self.defaults, *layers)

    # -- entry point --------------------------------------------------------

    async def handle(self, job: Job) -> Outcome:
        if job.kind == "follow":
            return await self._follow(job)
        event = events.parse(job.event, job.payload)
        fields: dict[str, Any] = {"delivery_id": job.delivery_id, "job_id": job.id}
        if event is None:
            return Outcome("done", "not an event the app acts on")
        if isinstance(event, InstallationEvent):
            await self._installation(event)
            return Outcome("done", f"{event.event}.{event.action} recorded")
        fields |= {"repo": event.repository.full_name, "issue": event.issue.number}
        try:
            config = await self.config(event.installation_id, event.repository)
        except ConfigError as exc:
            return await self._config_problem(job, event, exc)

        found = policy.trigger(event, config)
        if isinstance(found, policy.Ignore):
            log(logger, "delivery.ignored", reason=found.reason, **fields)
            return Outcome("done", found.reason)
        if isinstance(found, policy.Reply):
            await self._reply(job, event, found)
            return Outcome("done", "replied")

        pinned = job.progress.get("decision")
        if pinned is not None:
            # An earlier attempt decided; that stands. Deciding again would see this job's
            # own doing (its session recorded, a session it stopped) as facts.
            decision = await self._pinned(found, pinned)
        else:
            permission = await self.github.permission(
                found.installation_id, found.repository.full_name, found.sender.login
            )
            sessions = await self.store.sessions_for_issue(
                found.repository.full_name, found.issue.number
            )
            facts = policy.Facts(
                permission=permission,
                sessions=tuple(sessions),
                now=self.clock(),
                messageable=frozenset(
                    s.platform for s in sessions if self._can(s.platform, "can_message")
                ),
            )
            decision = policy.decide(found, config, facts)
            await self._pin(job, decision)
        if isinstance(decision, policy.Ignore):
            return Outcome("done", decision.reason)
        if isinstance(decision, policy.Reply):
            await self._reply(job, event, decision)
            log(logger, "delivery.replied", sender=found.sender.login, **fields)
            return Outcome("done", "replied")
        if isinstance(decision, policy.FollowUp):
            return await self._follow_up(job, decision, fields)
        if isinstance(decision, policy.Stop):
            return await self._stop(job, decision, fields)
        return await self._dispatch(job, decision, config, fields)

    async def _pin(self, job: Job, decision: policy.Decision) -> None:
        """Record a decision that acts on a platform, so retries carry it out unchanged."""
        pin: dict[str, Any] | None = None
        if isinstance(decision, policy.Dispatch):
            pin = {"kind": "dispatch", "platform": decision.platform, "agent": decision.agent}
        elif isinstance(decision, policy.FollowUp):
            pin = {"kind": "follow_up", "session": decision.session.dispatch_id}
        elif isinstance(decision, policy.Stop):
            pin = {"kind": "stop", "sessions": [s.dispatch_id for s in decision.sessions]}
        if pin is not None:
            await Progress(job, self.store).set(decision=pin)

    async def _pinned(self, found: policy.Trigger, pin: dict[str, Any]) -> policy.Decision:
        if pin.get("kind", "dispatch") == "dispatch":
            return policy.Dispatch(found, pin["platform"], pin["agent"])
        records = {
            r.dispatch_id: r
            for r in await self.store.sessions_for_issue(
                found.repository.full_name, found.issue.number
            )
        }
        if pin["kind"] == "follow_up" and pin["session"] in records:
            return policy.FollowUp(found, records[pin["session"]])
        if pin["kind"] == "stop":
            return policy.Stop(found, tuple(records[d] for d in pin["sessions"] if d in records))
        return policy.Ignore("the session an earlier attempt acted on is gone")

    def _can(self, platform: str, capability: str) -> bool:
        try:
            return bool(getattr(self.platforms(platform), capability))
        except MissingCredentials:
            return False

    # -- after the session starts -------------------------------------------------

    async def _edit_view(
        self, record: SessionRecord, view: dict[str, Any], status: str | None = None
    ) -> None:
        """Write `view` to the session's status comment and the store, if it changed."""
        if view == record.view:
            return
        if record.comment_id is not None and record.installation_id is not None:
            await self.github.update_comment(
                record.installation_id,
                record.repo,
                record.comment_id,
                messages.status_comment(view, record.dispatch_id),
            )
        await self.store.update_session(record.dispatch_id, status or record.status, view)

    async def _record(self, repo: str, issue: int, ident: str) -> SessionRecord | None:
        for record in await self.store.sessions_for_issue(repo, issue):
            if record.dispatch_id == ident:
                return record
        return None

    async def _follow(self, job: Job) -> Outcome:
        """One poll of a running session: edit the status comment if its state changed,
        then come back later with a longer interval, until it ends or 7 days pass."""
        data = job.payload
        record = await self._record(data["repo"], data["issue"], data["dispatch_id"])
        if record is None or record.status in policy.TERMINAL:
            return Outcome("done", "nothing to follow")
        try:
            platform = self.platforms(record.platform)
        except MissingCredentials as exc:
            return Outcome("done", str(exc))
        try:
            state = await platform.get_session(record.session_id)
        except PlatformError as exc:
            if exc.transient:
                raise
            return Outcome("failed", f"stopped following: {exc.message}")
        phase = state.phase
        if phase == "queued" and record.view.get("phase") == "started":
            phase = "started"  # nothing a reader would call news: save the edit
        view = {
            **record.view,
            "phase": phase,
            "pull_requests": sorted(
                set(record.view.get("pull_requests", [])) | set(state.pull_requests)
            ),
            "reason": state.reason if state.phase in ("failed", "stopped") else "",
        }
        opened_pr = view["pull_requests"] and not record.view.get("pull_requests")
        await self._edit_view(record, view, state.phase)
        if opened_pr and record.installation_id is not None:
            with contextlib.suppress(GitHubError):
                await self.github.create_reaction(
                    record.installation_id, record.repo, content="rocket", issue=record.issue
                )
        now = self.clock()
        if state.terminal:
            return Outcome("done", f"session {state.phase}")
        if now - float(data["started_at"]) > FOLLOW_FOR:
            return Outcome("done", "followed for 7 days; stopped following")
        polls = int(job.progress.get("polls", 0)) + 1
        await Progress(job, self.store).set(polls=polls)
        interval = min(FOLLOW_FIRST * 2**polls, FOLLOW_CAP)
        return Outcome("again", f"session {state.phase}", run_at=now + interval)

    async def _follow_up(
        self, job: Job, decision: policy.FollowUp, fields: dict[str, Any]
    ) -> Outcome:
        found, record = decision.trigger, decision.session
        assert found.command is not None
        progress = Progress(job, self.store)
        if not progress.get("reacted"):
            await self._react(found, "eyes")
            await progress.set(reacted=True)
        if not progress.get("message_sent"):
            platform = self.platforms(record.platform)
            text = clean(found.command.text)
            try:
                await platform.send_message(record.session_id, text, dispatch_id(job))
            except PlatformError as exc:
                if exc.transient:
                    raise
                await self.github.create_comment(
                    found.installation_id,
                    found.repository.full_name,
                    found.issue.number,
                    messages.follow_up_failed(record, exc.message),
                )
                return Outcome("failed", exc.message)
            await progress.set(message_sent=True)
        stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(self.clock()))
        note = f"📨 follow-up from @{found.sender.login} sent to the session ({stamp})"
        notes = list(record.view.get("notes", []))
        if note not in notes:
            await self._edit_view(record, {**record.view, "notes": [*notes, note]})
        log(logger, "session.follow_up", session_id=record.session_id, **fields)
        return Outcome("done", "follow-up sent")

    async def _stop(self, job: Job, decision: policy.Stop, fields: dict[str, Any]) -> Outcome:
        found = decision.trigger
        progress = Progress(job, self.store)
        if found.comment_id is not None and not progress.get("reacted"):
            await self._react(found, "eyes")
            await progress.set(reacted=True)
        why = (
            f"stopped by @{found.sender.login}"
            if found.kind == "command"
            else f"the issue was closed as not planned by @{found.sender.login}"
        )
        unstoppable: list[SessionRecord] = []
        stopped = list(progress.get("stopped") or [])
        for record in decision.sessions:
            if record.status == "stopped":
                continue  # an earlier attempt of this job stopped it and said so
            if record.dispatch_id not in stopped:
                if not self._can(record.platform, "can_stop"):
                    unstoppable.append(record)
                    continue
                try:
                    await self.platforms(record.platform).stop_session(record.session_id)
                except PlatformError as exc:
                    if exc.transient:
                        raise
                    unstoppable.append(record)
                    continue
                stopped.append(record.dispatch_id)
                await progress.set(stopped=stopped)
            view = {**record.view, "phase": "stopped", "reason": why}
            await self._edit_view(record, view, "stopped")
            log(logger, "session.stopped", session_id=record.session_id, **fields)
        if unstoppable and not progress.get("told_unstoppable"):
            await self.github.create_comment(
                found.installation_id,
                found.repository.full_name,
                found.issue.number,
                messages.cannot_stop(unstoppable),
            )
            await progress.set(told_unstoppable=True)
        return Outcome("done", why)

    # -- steps ----------------------------------------------------------------

    async def _installation(self, event: InstallationEvent) -> None:
        now = self.clock()
        if event.event == "installation":
            await self.store.record_installation(
                event.installation_id, event.account, event.action, now
            )
        else:
            await self.store.record_installation(event.installation_id, event.account, "", now)
        await self.store.record_repositories(
            event.installation_id, event.repositories_added, event.repositories_removed
        )

    async def _config_problem(
        self, job: Job, event: IssueEvent | CommentEvent, error: ConfigError
    ) -> Outcome:
        # Report only when the delivery was meant for the app under the keys that did parse.
        lenient = merge(self.defaults, error.partial)
        found = policy.trigger(event, lenient)
        if isinstance(found, policy.Ignore):
            return Outcome("done", "config has problems; delivery was not a trigger")
        await self._reply(job, event, policy.Reply(messages.config_error(error), "confused"))
        log(
            logger,
            "config.invalid",
            logging.WARNING,
            error=str(error),
            delivery_id=job.delivery_id,
            repo=event.repository.full_name,
        )
        return Outcome("done", "config problems reported")

    async def _react(
        self, target: policy.Trigger | IssueEvent | CommentEvent, content: str
    ) -> None:
        """React on the comment that triggered, or on the issue when a label did."""
        if isinstance(target, policy.Trigger):
            comment_id = target.comment_id
        else:
            comment_id = target.comment.id if isinstance(target, CommentEvent) else None
        await self.github.create_reaction(
            target.installation_id,
            target.repository.full_name,
            content=content,
            issue=None if comment_id else target.issue.number,
            comment_id=comment_id,
        )

    async def _reply(self, job: Job, event: IssueEvent | CommentEvent, reply: policy.Reply) -> None:
        progress = Progress(job, self.store)
        if progress.get("replied"):
            return
        repo, issue = event.repository.full_name, event.issue.number
        if reply.once and not await self.store.remember_notice(
            repo, issue, reply.once, self.clock()
        ):
            await progress.set(replied=True)
            return
        if reply.reaction and not progress.get("reply_reacted"):
            await self._react(event, reply.reaction)
            await progress.set(reply_reacted=True)
        await self.github.create_comment(event.installation_id, repo, issue, reply.body)
        await progress.set(replied=True)

    async def _dispatch(
        self,
        job: Job,
        decision: policy.Dispatch,
        config: RepoConfig,
        fields: dict[str, Any],
    ) -> Outcome:
        found = decision.trigger
        progress = Progress(job, self.store)
        installation, repo, number = (
            found.installation_id,
            found.repository.full_name,
            found.issue.number,
        )
        ident = dispatch_id(job)

        if not progress.get("reacted"):
            await self._react(found, "eyes")
            await progress.set(reacted=True)

        status_id = progress.get("status_comment_id")
        if status_id is None:
            if progress.get("status_comment_pending"):
                status_id = await self._find_status_comment(installation, repo, number, ident)
            if status_id is None:
                await progress.set(status_comment_pending=True)
                status_id = await self.github.create_comment(
                    installation,
                    repo,
                    number,
                    messages.starting(decision.platform, found.sender.login, ident),
                )
            await progress.set(status_comment_id=status_id)

        async def report(body: str) -> None:
            await self.github.update_comment(installation, repo, status_id, body)

        try:
            platform = self.platforms(decision.platform)
        except MissingCredentials as exc:
            await report(messages.failed(decision.platform, str(exc), ident=ident))
            await self._react_failure(found)
            log(
                logger,
                "dispatch.unconfigured",
                logging.WARNING,
                platform=decision.platform,
                error=str(exc),
                **fields,
            )
            return Outcome("failed", str(exc))

        request = await self._request(job, decision, config, ident)
        session = self._recorded_session(progress)
        if session is None:
            try:
                session = await self._create(progress, platform, request)
            except PlatformError as exc:
                if exc.transient:
                    raise
                await report(messages.failed(decision.platform, exc.message, ident=ident))
                await self._react_failure(found)
                log(
                    logger,
                    "dispatch.refused",
                    logging.WARNING,
                    platform=decision.platform,
                    status=exc.status,
                    error=exc.message,
                    **fields,
                )
                return Outcome("failed", exc.message)
            await progress.set(session=dataclasses.asdict(session))
            view = messages.session_view(
                session,
                platform=decision.platform,
                agent=request.agent,
                branch=request.branch_name,
                target=request.target_branch,
            )
            await self.store.record_session(
                SessionRecord(
                    dispatch_id=ident,
                    repo=repo,
                    issue=number,
                    platform=decision.platform,
                    session_id=session.id,
                    url=session.url,
                    created_at=self.clock(),
                    status=session.status,
                    comment_id=status_id,
                    installation_id=installation,
                    view=view,
                )
            )
        if not progress.get("reported"):
            if session.preview is not None:
                body = messages.dry_run(
                    session.preview,
                    branch=request.branch_name,
                    target=request.target_branch,
                    ident=ident,
                )
            else:
                body = messages.created(
                    session,
                    platform=decision.platform,
                    agent=request.agent,
                    branch=request.branch_name,
                    target=request.target_branch,
                    ident=ident,
                )
            await report(body)
            await progress.set(reported=True)
            if self.metrics is not None and job.created_at:
                self.metrics.observe_dispatch(self.clock() - job.created_at)
        if platform.can_read and not progress.get("following"):
            follow = {
                "dispatch_id": ident,
                "repo": repo,
                "issue": number,
                "platform": decision.platform,
                "started_at": self.clock(),
            }
            now = self.clock()
            await self.store.schedule(
                "follow", follow, job_lock(repo, number), now + FOLLOW_FIRST, now
            )
            await progress.set(following=True)
        log(
            logger,
            "dispatch.created",
            platform=decision.platform,
            session_id=session.id,
            url=session.url,
            **fields,
        )
        return Outcome("done", session.url)

    async def _find_status_comment(
        self, installation: int, repo: str, number: int, ident: str
    ) -> int | None:
        """After a crash between creating the status comment and recording its id, find it
        instead of posting a second one."""
        marker = messages.dispatch_marker(ident)
        for comment in await self.github.list_comments(installation, repo, number):
            if messages.has_marker(comment.body) and marker in comment.body:
                return comment.id
        return None

    def _recorded_session(self, progress: Progress) -> Session | None:
        data = progress.get("session")
        if not data:
            return None
        return Session(**data)

    async def _create(
        self, progress: Progress, platform: SessionPlatform, request: SessionRequest
    ) -> Session:
        # How many creates may have reached the platform without our knowing the outcome:
        # counted up before sending (a crash mid-call leaves it counted), back down when
        # the platform gives a definite answer.
        unknown = int(progress.get("creates_unknown") or 0)
        request = dataclasses.replace(
            request, first_sent_at=float(progress.get("first_sent_at") or 0.0)
        )
        if unknown:
            existing = await platform.find_session(request)
            if existing is not None:
                return existing
            if not platform.can_find and unknown >= 2:
                raise PlatformError(
                    f"{platform.name} did not answer twice and cannot be asked whether a "
                    "session was started, so it is not asked again (a session may exist: "
                    "check the platform before using `/tembo new`)"
                )
        first = progress.get("first_sent_at")
        if first is None:
            first = self.clock()
            await progress.set(creates_unknown=unknown + 1, first_sent_at=first)
        else:
            await progress.set(creates_unknown=unknown + 1)
        try:
            return await platform.create_session(request)
        except PlatformError as exc:
            if not exc.ambiguous:
                await progress.set(creates_unknown=unknown)
            raise

    async def _request(
        self, job: Job, decision: policy.Dispatch, config: RepoConfig, ident: str
    ) -> SessionRequest:
        found = decision.trigger
        comments = []
        if config.include_comments and found.issue.comments > 0:
            comments = [
                c
                for c in await self.github.list_comments(
                    found.installation_id, found.repository.full_name, found.issue.number
                )
                if c.id != found.comment_id
            ]
        plan = prompt.build(
            issue=found.issue,
            repository=found.repository,
            comments=comments,
            command=found.command,
            requester=found.sender.login,
            config=config,
            dispatch_id=ident,
        )
        return SessionRequest(
            dispatch_id=ident,
            title=plan.title,
            prompt=plan.prompt,
            repository=found.repository,
            target_branch=plan.target,
            branch_name=plan.branch,
            agent=decision.agent,
        )

    async def _react_failure(self, found: policy.Trigger) -> None:
        # Best effort: the status comment already says what failed.
        with contextlib.suppress(GitHubError):
            await self._react(found, "confused")

    async def give_up(self, job: Job, error: RemoteError | Exception) -> None:
        """The job used its attempts: say so once on the issue, if it had a status comment."""
        progress = Progress(job, self.store)
        status_id = progress.get("status_comment_id")
        event = events.parse(job.event, job.payload)
        if (
            status_id is None
            or progress.get("reported")
            or not isinstance(event, IssueEvent | CommentEvent)
        ):
            return
        reason = error.message if isinstance(error, RemoteError) else "an internal error"
        await self.github.update_comment(
            event.installation_id,
            event.repository.full_name,
            status_id,
            messages.failed(
                "", f"gave up after {job.attempts} attempts: {reason}", ident=dispatch_id(job)
            ),
        )
        await progress.set(reported=True)
