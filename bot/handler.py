"""From a job to an action: parse, read the repository's config, decide, carry it out.

The worker calls `Handler.handle(job)`. Deciding is `policy`'s (pure); doing is
`bot.actions`' (one module per behaviour). What this module adds is the order: facts are
fetched only for real triggers, and a decision that acts on a platform is pinned in the
job's journal, so the job's retries carry out the same decision.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from bot import dispatch_status, events, policy
from bot.actions import Context, Outcome, dispatch_id
from bot.actions import installation as installations
from bot.actions.dispatch import dispatch
from bot.actions.fanout import fan_out
from bot.actions.fanout import gave_up as fanout_gave_up
from bot.actions.follow import follow
from bot.actions.follow_up import follow_up
from bot.actions.pick import pick
from bot.actions.pinning import pinned, unpin
from bot.actions.reply import config_problem, reply
from bot.actions.status_comment import StatusComment
from bot.actions.stop import can, stop
from bot.actions.usage import gave_up as fleet_gave_up
from bot.actions.usage import status_facts
from bot.config_words import note_config  # ingest filters on what config() saw
from bot.events import CommentEvent, InstallationEvent, IssueEvent, Repository
from bot.journal import Progress
from bot.logs import log
from bot.ports import Job, RemoteError
from bot.repo_config import ORG_REPO, PATH, ConfigError, RepoConfig, merge, parse_layer

logger = logging.getLogger("bot.handler")


class Handler:
    def __init__(self, ctx: Context, defaults: RepoConfig) -> None:
        self.ctx = ctx
        self.defaults = defaults

    async def config(self, installation_id: int, repo: Repository) -> RepoConfig:
        """Operator defaults, then the org's `.github` repository, then the repository's own
        file (default branch); raises `ConfigError` for a file with problems."""
        org_source = f"{repo.owner}/{ORG_REPO}"
        # The org's own `.github` repository: its file is the org layer, not a repository's.
        sources = [org_source] if repo.name == ORG_REPO else [org_source, repo.full_name]
        layers: dict[str, dict[str, Any]] = {}
        for source in sources:
            text = await self.ctx.github.read_file(installation_id, source, PATH)
            if text is not None:
                layers[source] = parse_layer(text, f"{source}:{PATH}")
        own = None if repo.name == ORG_REPO else layers.get(repo.full_name)
        config = merge(self.defaults, layers.get(org_source, {}), own=own)
        await note_config(self.ctx.store, installation_id, repo.full_name, config, self.ctx.clock())
        return config

    async def handle(self, job: Job) -> Outcome:
        progress = Progress(job, self.ctx.store)
        if job.kind == "follow":
            return await follow(self.ctx, job, progress)
        event = events.parse(job.event, job.payload)
        if event is None:
            return Outcome("done", "not an event the app acts on")
        if isinstance(event, InstallationEvent):
            await installations.record(self.ctx, event)
            return Outcome("done", f"{event.event}.{event.action} recorded")
        fields: dict[str, Any] = {
            "delivery_id": job.delivery_id,
            "job_id": job.id,
            "repo": event.repository.full_name,
            "issue": event.issue.number,
        }
        try:
            config = await self.config(event.installation_id, event.repository)
        except ConfigError as exc:
            return await config_problem(self.ctx, progress, event, exc, self.defaults)

        found = policy.trigger(event, config)
        if isinstance(found, policy.Ignore):
            log(logger, "delivery.ignored", reason=found.reason, **fields)
            return Outcome("done", found.reason)

        decision = await self._decision(progress, found, config)
        if isinstance(decision, policy.Ignore):
            return Outcome("done", decision.reason)
        if isinstance(decision, policy.Reply):
            await reply(self.ctx, progress, event, decision)
            log(logger, "delivery.replied", sender=found.sender.login, **fields)
            return Outcome("done", "replied")
        if isinstance(decision, policy.FollowUp):
            return await follow_up(self.ctx, progress, decision, fields)
        if isinstance(decision, policy.Stop):
            return await stop(self.ctx, progress, decision, fields)
        if isinstance(decision, policy.Pick):
            return await pick(self.ctx, progress, decision, fields)
        if decision.fanout:
            return await fan_out(self.ctx, progress, decision, config, fields)
        return await dispatch(self.ctx, progress, decision, config, fields)

    async def _decision(
        self, progress: Progress, found: policy.Trigger, config: RepoConfig
    ) -> policy.Decision:
        """The pinned decision of an earlier attempt, or a new one (pinned if it acts)."""
        pin = progress.journal.pin
        if pin is not None:
            return await unpin(self.ctx, found, pin)
        repo, number = found.repository.full_name, found.issue.number
        permission = await self.ctx.github.permission(
            found.installation_id, repo, found.sender.login
        )
        sessions = await self.ctx.store.sessions_for_issue(repo, number)
        facts = policy.Facts(
            permission=permission,
            sessions=tuple(sessions),
            now=self.ctx.clock(),
            messageable=frozenset(
                s.platform for s in sessions if can(self.ctx, s.platform, "can_message")
            ),
            **await status_facts(self.ctx, found, config),  # /tembo status: ledger, budget
        )
        decision = policy.decide(found, config, facts)
        pin = pinned(decision)
        if pin is not None:
            await progress.write(dataclasses.replace(progress.journal, pin=pin))
        return decision

    async def give_up(self, job: Job, error: RemoteError | Exception) -> None:
        """The job used its attempts: a dispatch says so once on the issue, where its link
        would have been."""
        progress = Progress(job, self.ctx.store)
        journal = progress.journal
        event = events.parse(job.event, job.payload)
        dispatching = journal.pin is not None and journal.pin.kind == "dispatch"
        if (
            journal.reported
            or not (dispatching or journal.status_comment_id is not None)
            or not isinstance(event, IssueEvent | CommentEvent)
        ):
            return
        reason = error.message if isinstance(error, RemoteError) else "an internal error"
        text = f"gave up after {job.attempts} attempts: {reason}"
        if journal.pin is not None and journal.pin.platforms:
            await fanout_gave_up(self.ctx, job, event, text, error)  # rows in its table
            return
        status = StatusComment(
            self.ctx,
            progress,
            event.installation_id,
            event.repository.full_name,
            event.issue.number,
        )
        platform = journal.pin.platform if journal.pin is not None else ""
        notes = journal.fell_back  # "Tembo answered 503 three times; started on Agen instead"
        await status.post(
            dispatch_status.failed(platform, text, ident=dispatch_id(job), notes=notes)
        )
        await fleet_gave_up(self.ctx, job, event, platform, text, error)  # ledger row, budget back
        await progress.write(dataclasses.replace(progress.journal, reported=True))
