"""Every comment the app writes. Each carries the hidden marker, so the app can find its
own comments, leave them out of prompts, and never answer itself."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from bot import platforms
from bot.commands import USAGE
from bot.platforms import display_name
from bot.ports import Session, SessionRecord
from bot.repo_config import ConfigError, RepoConfig

MARKER = "<!-- tembo-dispatch -->"


def has_marker(body: str) -> bool:
    return MARKER in body


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
        "notes": list(session.notes),
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
    name = display_name(view["platform"])
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


def status(records: Sequence[SessionRecord], now: float | None = None) -> str:
    if not records:
        return _with_marker("No session has been started for this issue yet.")
    now = time.time() if now is None else now
    lines = ["| session | platform | started |", "|---|---|---|"]
    for record in records:
        started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(record.created_at))
        link = f"[{record.session_id}]({record.url})" if record.url else record.session_id
        lines.append(f"| {link} | {display_name(record.platform)} | {started} |")
    return _with_marker("Sessions for this issue:\n\n" + "\n".join(lines))


def config_error(error: ConfigError) -> str:
    problems = "\n".join(f"- {problem}" for problem in error.problems)
    return _with_marker(
        f"⚠️ `{error.source}` has problems, so nothing was started:\n\n{problems}\n\n"
        "Fix the file on the default branch and trigger again."
    )
