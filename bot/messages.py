"""Every comment the app writes carries the hidden marker, so the app can find its own
comments, leave them out of prompts, and never answer itself. This module holds the marker
and the comments that answer a person: replies to commands (`render`), refusals, and what
a follow-up or a stop could not do. A dispatch's status comment is `dispatch_status`.

Text that someone else wrote (a sender's command, a platform's answer) only ever reaches
a comment through `code()`: one line of inline code, so Markdown, mentions, images and
HTML in it stay inert. The GitHub adapter also scrubs every body for secrets on the way
out; nothing here has to remember to.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from typing import assert_never

from bot import platforms
from bot.commands import KEYS, USAGE, Problem
from bot.ledger import LedgerRow
from bot.platforms import display_name
from bot.ports import SessionRecord
from bot.replies import (
    ConfigProblems,
    Denied,
    Existing,
    Help,
    NothingToPick,
    NothingToStop,
    Reply,
    Status,
    UnknownPlatform,
    Usage,
)
from bot.repo_config import RepoConfig
from bot.sanitize import code

MARKER = "<!-- tembo-dispatch -->"


def has_marker(body: str) -> bool:
    return MARKER in body


def marked(text: str, ident: str | None = None) -> str:
    """`text` as a comment of the app: the marker first, then the dispatch id if any."""
    # The dispatch id lets a resumed job find the status comment it already posted.
    hidden = f"{MARKER}\n{dispatch_marker(ident)}" if ident else MARKER
    return f"{hidden}\n{text.strip()}\n"


def dispatch_marker(ident: str) -> str:
    return f"<!-- dispatch-id: {ident} -->"


_URL = re.compile(r"^https://[^\s<>()\[\]`]+$")


def link(url: str) -> str:
    """A platform's link as a bare URL GitHub autolinks; anything that is not a plain
    https URL is shown as inert text instead."""
    return url if _URL.match(url) else code(url, 200)


def follow_up_failed(record: SessionRecord, reason: str) -> str:
    name = display_name(record.platform)
    return marked(
        f"😕 Could not send the follow-up to the {name} session [{record.url}]({record.url}): "
        f"{reason}"
    )


def cannot_stop(records: Sequence[SessionRecord]) -> str:
    lines = [f"- [{r.url or r.session_id}]({r.url}) on {display_name(r.platform)}" for r in records]
    return marked(
        "These sessions cannot be stopped from here; stop them on their platform:\n\n"
        + "\n".join(lines)
    )


def nothing_to_stop() -> str:
    return marked("There is no running session on this issue to stop.")


def render(reply: Reply) -> str:
    """The comment a reply becomes: the one place replies are worded."""
    said = reply.said
    if isinstance(said, Usage):
        return usage(said.command, problem_text(said.problem))
    if isinstance(said, UnknownPlatform):
        known = ", ".join(f"`{entry.name}`" for entry in platforms.REGISTRY)
        return usage(
            said.command, f"unknown platform {code(said.platform, 40)}; known platforms: {known}"
        )
    if isinstance(said, Denied):
        return denied(said.login, said.min_permission)
    if isinstance(said, Help):
        return help_text(said.config)
    if isinstance(said, Status):
        return status(said.sessions, said.now, usage=said.usage, budget_left=said.budget_left)
    if isinstance(said, Existing):
        return existing(said.session, said.command)
    if isinstance(said, NothingToStop):
        return nothing_to_stop()
    if isinstance(said, NothingToPick):
        return marked(
            f"There is no session on {display_name(said.platform)} in a fan-out on this "
            "issue to pick."
        )
    if isinstance(said, ConfigProblems):
        return config_problems(said.source, said.problems)
    assert_never(said)


def problem_text(problem: Problem) -> str:
    """What was wrong with a command. The key and value are the sender's: code() only."""
    key = code(problem.key, 40)
    if problem.kind == "unknown_key":
        return f"unknown key {key}; known keys: {', '.join(f'`{k}`' for k in KEYS)}"
    if problem.kind == "bad_bool":
        return f"{code(problem.key + '=' + problem.value, 60)} must be true or false"
    if problem.kind == "empty_value":
        return f"{code(problem.key + '=', 40)} needs a value"
    if problem.kind == "bad_ref":
        return (
            f"{code(problem.key + '=' + problem.value, 80)} is not a branch name this app "
            "accepts: letters, digits and . _ / + # @ = , - only, as git allows them "
            "(no `..`, no leading `-` or `/`, no `.lock` ending)"
        )
    if problem.kind == "bad_pick":
        return "`pick` takes one platform name, e.g. `pick devin`"
    if problem.kind == "bad_agent":
        return (
            f"{code('agent=' + problem.value, 80)} is not an agent name: up to 100 letters, "
            "digits and : . _ / -"
        )
    assert_never(problem.kind)


def denied(login: str, min_permission: str) -> str:
    return marked(
        f"👋 @{login}, only people with **{min_permission}** access (or more) to this "
        "repository can start sessions here. Ask a maintainer to add the label or "
        "run the command for you."
    )


def existing(record: SessionRecord, command: str) -> str:
    return marked(
        f"A session is already working on this issue: [{record.url}]({record.url}). "
        f"Use `{command} new …` to start another one."
    )


def usage(command: str, error: str | None = None) -> str:
    text = USAGE.format(command=command)
    head = f"⚠️ {error}\n\n" if error else ""
    return marked(f"{head}{text}")


def help_text(config: RepoConfig) -> str:
    return marked(
        f"{USAGE.format(command=config.command)}\n\n"
        f"<details><summary>effective configuration</summary>\n\n"
        f"```yaml\n{config.as_yaml()}\n```\n\n</details>"
    )


def status(
    records: Sequence[SessionRecord],
    now: float | None = None,
    *,
    usage: Sequence[LedgerRow] = (),
    budget_left: Mapping[str, int | None] | None = None,
) -> str:
    extra = _usage_lines(usage) + _budget_lines(budget_left)
    if not records:
        return marked("No session has been started for this issue yet." + extra)
    now = time.time() if now is None else now
    lines = ["| session | platform | started |", "|---|---|---|"]
    for record in records:
        started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(record.created_at))
        link = f"[{record.session_id}]({record.url})" if record.url else record.session_id
        link = link or "— (could not start)"  # a fan-out's platform that said no
        lines.append(f"| {link} | {display_name(record.platform)} | {started} |")
    return marked("Sessions for this issue:\n\n" + "\n".join(lines) + extra)


def _usage_lines(usage: Sequence[LedgerRow]) -> str:
    if not usage:
        return ""
    lines = ["| when | what | platform | by | outcome |", "|---|---|---|---|---|"]
    for row in usage:
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(row.at))
        name = display_name(row.platform)
        lines.append(
            f"| {when} | {row.kind.replace('_', ' ')} | {name} | @{row.sender} | {row.outcome} |"
        )
    return "\n\nWhat the app did on this issue:\n\n" + "\n".join(lines)


def _budget_lines(left: Mapping[str, int | None] | None) -> str:
    if left is None:
        return ""
    shown = [f"`{name}`: {n} left" for name, n in left.items() if n is not None]
    return "\n\nBudget left (`limits:`): " + ", ".join(shown) + "."


def config_problems(source: str, problems: Sequence[str]) -> str:
    listed = "\n".join(f"- {problem}" for problem in problems)
    return marked(
        f"⚠️ `{source}` has problems, so nothing was started:\n\n{listed}\n\n"
        "Fix the file on the default branch and trigger again."
    )


def follow_up_fanout(
    sender: str,
    sent: Sequence[SessionRecord],
    refused: Sequence[tuple[SessionRecord, str]],
    unable: Sequence[SessionRecord],
) -> str:
    """The one reply to a follow-up after a fan-out: where it went and where it could not."""
    names = ", ".join(display_name(r.platform) for r in sent)
    head = f"📨 Follow-up from @{sender} sent to {names}." if sent else "😕 Follow-up not sent."
    lines = [f"- {display_name(r.platform)} said no: {reason}" for r, reason in refused]
    lines += [
        f"- {display_name(r.platform)} cannot take messages from here; send it on its "
        f"platform: {link(r.url) if r.url else r.session_id}"
        for r in unable
    ]
    return marked("\n\n".join([head, "\n".join(lines)]) if lines else head)
