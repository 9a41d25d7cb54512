"""Every comment the app writes. Each carries the hidden marker, so the app can find its
own comments, leave them out of prompts, and never answer itself."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from bot.commands import USAGE
from bot.fleet import Over
from bot.ledger import Usage
from bot.ports import Session, SessionRecord
from bot.repo_config import ConfigError, RepoConfig

MARKER = "<!-- tembo-dispatch -->"
PLATFORM_NAMES = {
    "tembo": "Tembo",
    "recoup": "Recoup",
    "agen": "Agen",
    "magnet": "Magnet",
    "dry-run": "dry run",
}


def has_marker(body: str) -> bool:
    return MARKER in body


def _with_marker(text: str, ident: str | None = None) -> str:
    # The dispatch id lets a resumed job find the status comment it already posted.
    hidden = f"{MARKER}\n<!-- dispatch-id: {ident} -->" if ident else MARKER
    return f"{hidden}\n{text.strip()}\n"


def dispatch_marker(ident: str) -> str:
    return f"<!-- dispatch-id: {ident} -->"


def starting(platform: str, who: str, ident: str) -> str:
    name = PLATFORM_NAMES.get(platform, platform)
    return _with_marker(f"⏳ Starting a {name} session for @{who}…", ident)


def session_view(
    session: Session, *, platform: str, agent: str | None, branch: str, target: str
) -> dict[str, Any]:
    """What a session's status comment shows, kept with the session so that whoever edits
    the comment next (the poller, a follow-up, a stop) starts from it."""
    return {
        "platform": platform,
        "url": session.url,
        "session_id": session.id,
        "agent": agent,
        "branch": branch,
        "target": target,
        "phase": "started",
        "pull_requests": [],
        "reason": "",
        "notes": [],
    }


_PHASES = {
    "started": ("🚀", "started"),
    "queued": ("⏳", "queued"),
    "working": ("🛠️", "working"),
    "finished": ("✅", "finished"),
    "failed": ("😕", "failed"),
    "stopped": ("⏹️", "stopped"),
}


def status_comment(view: dict[str, Any], ident: str) -> str:
    name = PLATFORM_NAMES.get(view["platform"], view["platform"])
    icon, word = _PHASES.get(view["phase"], ("🛠️", view["phase"]))
    url = view["url"]
    head = f"{icon} {name} session {word}: [{url}]({url})"
    if view.get("reason"):
        head += f"\n\n> {view['reason'][:500]}"
    lines = [head]
    prs = view.get("pull_requests") or []
    if prs:
        lines += ["", "Pull request" + ("s:" if len(prs) > 1 else ":")]
        lines += [f"- {pr}" for pr in prs]
    elif view["phase"] == "finished":
        lines += ["", "The platform reported no pull request."]
    lines += [
        "",
        f"- agent: `{view.get('agent') or 'platform default'}`",
        f"- branch: `{view['branch']}` → `{view['target']}`",
    ]
    lines += [f"- {note}" for note in view.get("notes") or []]
    return _with_marker("\n".join(lines), ident)


def created(
    session: Session, *, platform: str, agent: str | None, branch: str, target: str, ident: str
) -> str:
    view = session_view(session, platform=platform, agent=agent, branch=branch, target=target)
    return status_comment(view, ident)


def follow_up_failed(record: SessionRecord, reason: str) -> str:
    name = PLATFORM_NAMES.get(record.platform, record.platform)
    return _with_marker(
        f"😕 Could not send the follow-up to the {name} session [{record.url}]({record.url}): "
        f"{reason}"
    )


def cannot_stop(records: Sequence[SessionRecord]) -> str:
    lines = [
        f"- [{r.url or r.session_id}]({r.url}) on {PLATFORM_NAMES.get(r.platform, r.platform)}"
        for r in records
    ]
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
    name = PLATFORM_NAMES.get(platform)
    what = f"a {name} session" if name else "the session"
    return _with_marker(f"😕 Could not start {what}: {reason}", ident)


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


def usage(config: RepoConfig, error: str | None = None) -> str:
    text = USAGE.format(command=config.command)
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
    usage: Sequence[Usage] = (),
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
        lines.append(
            f"| {link} | {PLATFORM_NAMES.get(record.platform, record.platform)} | {started} |"
        )
    return _with_marker("Sessions for this issue:\n\n" + "\n".join(lines) + extra)


def _usage_lines(usage: Sequence[Usage]) -> str:
    if not usage:
        return ""
    lines = ["| when | what | platform | by | outcome |", "|---|---|---|---|---|"]
    for row in usage:
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(row.at))
        name = PLATFORM_NAMES.get(row.platform, row.platform)
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


def config_error(error: ConfigError) -> str:
    problems = "\n".join(f"- {problem}" for problem in error.problems)
    return _with_marker(
        f"⚠️ `{error.source}` has problems, so nothing was started:\n\n{problems}\n\n"
        "Fix the file on the default branch and trigger again."
    )
