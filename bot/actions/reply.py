"""Answering on the issue instead of acting: help, status, refusals, config problems.

A reply is posted at most once per job (the journal says so), and a reply marked `once`
at most once per issue (the store's notices say so)."""

from __future__ import annotations

import dataclasses
import logging

from bot import messages, policy
from bot.actions import Context, Outcome, react
from bot.events import CommentEvent, IssueEvent
from bot.journal import Progress
from bot.logs import log
from bot.ports import Priority
from bot.repo_config import ConfigError, RepoConfig, merge

logger = logging.getLogger("bot.actions.reply")


async def reply(
    ctx: Context, progress: Progress, event: IssueEvent | CommentEvent, answer: policy.Reply
) -> None:
    if progress.journal.replied:
        return
    repo, issue = event.repository.full_name, event.issue.number
    if answer.once and not await ctx.store.remember_notice(repo, issue, answer.once, ctx.clock()):
        await progress.write(dataclasses.replace(progress.journal, replied=True))
        return
    if answer.reaction and not progress.journal.reply_reacted:
        await react(ctx, event, answer.reaction, Priority.REPLY)
        await progress.write(dataclasses.replace(progress.journal, reply_reacted=True))
    await ctx.github.create_comment(
        event.installation_id, repo, issue, messages.render(answer), priority=Priority.REPLY
    )
    await progress.write(dataclasses.replace(progress.journal, replied=True))


async def config_problem(
    ctx: Context,
    progress: Progress,
    event: IssueEvent | CommentEvent,
    error: ConfigError,
    defaults: RepoConfig,
) -> Outcome:
    # Report only when the delivery was meant for the app under the keys that did parse.
    lenient = merge(defaults, error.partial)
    found = policy.trigger(event, lenient)
    if isinstance(found, policy.Ignore):
        return Outcome("done", "config has problems; delivery was not a trigger")
    # Permission first: a file's problems are told only to those who may act here.
    who = await ctx.github.permission(
        found.installation_id, found.repository.full_name, found.sender.login
    )
    answer = policy.config_problem(found, lenient, who, error)
    if isinstance(answer, policy.Ignore):
        return Outcome("done", answer.reason)
    await reply(ctx, progress, event, answer)
    log(
        logger,
        "config.invalid",
        logging.WARNING,
        error=str(error),
        delivery_id=progress.job.delivery_id,
        repo=event.repository.full_name,
    )
    return Outcome("done", "config problems reported")
