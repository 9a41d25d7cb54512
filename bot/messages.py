"""Every comment the app writes. Each carries the hidden marker, so the app can find its
own comments, leave them out of prompts, and never answer itself.

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
from bot.events import Comment
from bot.fleet import Over
from bot.ledger import LedgerRow
from bot.platforms import display_name
from bot.ports import Session, SessionRecord, SessionRequest, SessionView, ViewPhase
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


_URL = re.compile(r"^https://[^\s<>()\[\]`]+$")


def link(url: str) -> str:
    """A platform's link as a bare URL GitHub autolinks; anything that is not a plain
    https URL is shown as inert text instead."""
    return url if _URL.match(url) else code(url, 200)


def status_comment_id(comments: Sequence[Comment], ident: str, app_login: str) -> int | None:
    """The status comment of dispatch `ident`, among the comments the App itself wrote.
    Anyone can paste the marker into a comment; only the App's bot user is the author of
    ours, so a look-alike is never taken over (edited) or mistaken for ours."""
    marker = dispatch_marker(ident)
    for comment in comments:
        if comment.user.login == app_login and has_marker(comment.body) and marker in comment.body:
            return comment.id
    return None


def _with_marker(text: str, ident: str | None = None) -> str:
    # The dispatch id lets a resumed job find the status comment it already posted.
    hidden = f"{MARKER}\n<!-- dispatch-id: {ident} -->" if ident else MARKER
    return f"{hidden}\n{text.strip()}\n"


def dispatch_marker(ident: str) -> str:
    return f"<!-- dispatch-id: {ident} -->"


def starting(platform: str, who: str, ident: str) -> str:
    name = display_name(platform)
    return _with_marker(f"⏳ Starting a {name} session for @{who}…", ident)


def session_view(
    session: Session, request: SessionRequest, *, platform: str, notes: tuple[str, ...] = ()
) -> SessionView:
    """A new session's view (`ports.SessionView`): the session's own notes, then `notes`."""
    return SessionView(
        platform=platform,
        url=session.url,
        session_id=session.id,
        notes=(*session.notes, *notes),
        agent=request.agent,
        branch=request.branch_name,
        target=request.target_branch,
    )


_PHASES: dict[ViewPhase, tuple[str, str]] = {
    "started": ("🚀", "started"),
    "queued": ("⏳", "queued"),
    "working": ("🛠️", "working"),
    "finished": ("✅", "finished"),
    "failed": ("😕", "failed"),
    "stopped": ("⏹️", "stopped"),
    "starting": ("⏳", "starting"),
    "refused": ("😕", "could not start"),
}


def status_comment(view: SessionView, ident: str) -> str:
    name = display_name(view.platform)
    icon, word = _PHASES[view.phase]
    url = view.url
    head = f"{icon} {name} session {word}: [{url}]({url})"
    if view.reason:
        # A platform's words about why its session ended: shown, but inert.
        head += f"\n\n> {code(view.reason, 500)}"
    lines = [head]
    prs = view.pull_requests
    if prs:
        lines += ["", "Pull request" + ("s:" if len(prs) > 1 else ":")]
        lines += [f"- {link(pr)}" for pr in prs]
    elif view.phase == "finished":
        lines += ["", "The platform reported no pull request."]
    lines += [
        "",
        f"- agent: `{view.agent or 'platform default'}`",
        f"- branch: `{view.branch}` → `{view.target}`",
    ]
    lines += [f"- {note}" for note in view.notes]
    return _with_marker("\n".join(lines), ident)


def fanout_status(views: Sequence[SessionView], ident: str) -> str:
    """A fan-out's one status comment: a row per platform, from the sessions' views (one
    per platform, in the fan-out's order), so whoever edits it renders every row."""
    lines = [
        "| platform | state | session | pull request | time to PR |",
        "|---|---|---|---|---|",
    ]
    notes: list[str] = []
    for view in views:
        name = display_name(view.platform)
        prs = ", ".join(link(pr) for pr in view.pull_requests) or "—"
        shown = f"**{name}** 🏆 picked" if view.picked else name
        lines.append(
            f"| {shown} | {_state_cell(view)} | {link(view.url) if view.url else '—'} | {prs} "
            f"| {_time_to_pr(view)} |"
        )
        notes += [f"{name}: {note}" for note in view.notes]
    first = next((v for v in views if v.branch), None)
    agent = first.agent if first is not None else None
    lines += ["", f"- agent: `{agent or 'platform default'}`"]
    if first is not None:
        lines.append(f"- each on its own branch (`{first.branch}`, …) → `{first.target}`")
    lines += [f"- {note}" for note in notes]
    return _with_marker(f"Sessions on {len(views)} platforms:\n\n" + "\n".join(lines), ident)


def _state_cell(view: SessionView) -> str:
    icon, word = _PHASES[view.phase]
    cell = f"{icon} {word}"
    if view.reason:
        # A platform's (or the app's) words: inert, and no pipe to break the table.
        cell += " " + code(view.reason.replace("|", "/"), 200)
    return cell


def _time_to_pr(view: SessionView) -> str:
    if view.started_at is None or view.pr_at is None:
        return "—"
    minutes = max(int((view.pr_at - view.started_at) // 60), 0)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def follow_up_failed(record: SessionRecord, reason: str) -> str:
    name = display_name(record.platform)
    return _with_marker(
        f"😕 Could not send the follow-up to the {name} session [{record.url}]({record.url}): "
        f"{reason}"
    )


def cannot_stop(records: Sequence[SessionRecord]) -> str:
    lines = [f"- [{r.url or r.session_id}]({r.url}) on {display_name(r.platform)}" for r in records]
    return _with_marker(
        "These sessions cannot be stopped from here; stop them on their platform:\n\n"
        + "\n".join(lines)
    )


def nothing_to_stop() -> str:
    return _with_marker("There is no running session on this issue to stop.")


def dry_run(request_text: str, *, branch: str, target: str, ident: str) -> str:
    return _with_marker(
        "🧪 Dry run: no session was created. This is the request that would have been sent "
        f"(branch `{branch}` → `{target}`):\n\n"
        f"<details><summary>request</summary>\n\n```json\n{request_text}\n```\n\n</details>",
        ident,
    )


def failed(platform: str, reason: str, *, ident: str) -> str:
    entry = platforms.get(platform)
    what = f"a {entry.display} session" if entry else "the session"
    return _with_marker(f"😕 Could not start {what}: {reason}", ident)


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
        return _with_marker(
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
    return _with_marker(
        f"👋 @{login}, only people with **{min_permission}** access (or more) to this "
        "repository can start sessions here. Ask a maintainer to add the label or "
        "run the command for you."
    )


def existing(record: SessionRecord, command: str) -> str:
    return _with_marker(
        f"A session is already working on this issue: [{record.url}]({record.url}). "
        f"Use `{command} new …` to start another one."
    )


def usage(command: str, error: str | None = None) -> str:
    text = USAGE.format(command=command)
    head = f"⚠️ {error}\n\n" if error else ""
    return _with_marker(f"{head}{text}")


def help_text(config: RepoConfig) -> str:
    return _with_marker(
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
        return _with_marker("No session has been started for this issue yet." + extra)
    now = time.time() if now is None else now
    lines = ["| session | platform | started |", "|---|---|---|"]
    for record in records:
        started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(record.created_at))
        link = f"[{record.session_id}]({record.url})" if record.url else record.session_id
        link = link or "— (could not start)"  # a fan-out's platform that said no
        lines.append(f"| {link} | {display_name(record.platform)} | {started} |")
    return _with_marker("Sessions for this issue:\n\n" + "\n".join(lines) + extra)


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


def limited(over: Over, *, command: str, ident: str) -> str:
    """A dispatch refused by a budget: the limit, the count, and when it frees up."""
    scope = {
        "per_user_per_day": "sessions a day for each person in this organisation",
        "per_repo_per_day": "sessions a day in this repository",
        "per_org_per_day": "sessions a day in this organisation",
        "concurrent_per_repo": "sessions running at once in this repository",
    }[over.name]
    if over.resets_at is None:
        when = "It frees up when one of the running sessions ends."
    else:
        stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(over.resets_at))
        when = f"It resets at {stamp}."
    return _with_marker(
        f"🚦 Not started: the limit of {over.limit} {scope} (`limits.{over.name}`) is used "
        f"up ({over.count} of {over.limit}). {when} Someone with admin access can start "
        f"one anyway with `{command} new force=true`.",
        ident,
    )


def config_problems(source: str, problems: Sequence[str]) -> str:
    listed = "\n".join(f"- {problem}" for problem in problems)
    return _with_marker(
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
    return _with_marker("\n\n".join([head, "\n".join(lines)]) if lines else head)
