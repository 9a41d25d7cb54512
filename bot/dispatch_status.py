"""The text of a dispatch's status comment: "starting", one session's state, a fan-out's
table of sessions, a dry run, a refusal by a budget, a failure to start.

Each carries the dispatch id besides the marker (`messages.marked`), so a resumed job finds
the comment it already posted (`status_comment_id`) and edits it. A platform's words (a
reason, a link) reach the comment only through `code()` or `link()`: inert.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from bot import platforms
from bot.events import Comment
from bot.fleet import Over
from bot.messages import dispatch_marker, has_marker, link, marked
from bot.platforms import display_name
from bot.ports import Session, SessionRequest, SessionView, ViewPhase
from bot.sanitize import code


def status_comment_id(comments: Sequence[Comment], ident: str, app_login: str) -> int | None:
    """The status comment of dispatch `ident`, among the comments the App itself wrote.
    Anyone can paste the marker into a comment; only the App's bot user is the author of
    ours, so a look-alike is never taken over (edited) or mistaken for ours."""
    marker = dispatch_marker(ident)
    for comment in comments:
        if comment.user.login == app_login and has_marker(comment.body) and marker in comment.body:
            return comment.id
    return None


def starting(platform: str, who: str, ident: str) -> str:
    name = display_name(platform)
    return marked(f"⏳ Starting a {name} session for @{who}…", ident)


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
    return marked("\n".join(lines), ident)


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
    return marked(f"Sessions on {len(views)} platforms:\n\n" + "\n".join(lines), ident)


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


def dry_run(request_text: str, *, branch: str, target: str, ident: str) -> str:
    return marked(
        "🧪 Dry run: no session was created. This is the request that would have been sent "
        f"(branch `{branch}` → `{target}`):\n\n"
        f"<details><summary>request</summary>\n\n```json\n{request_text}\n```\n\n</details>",
        ident,
    )


def failed(platform: str, reason: str, *, ident: str, notes: Sequence[str] = ()) -> str:
    """A dispatch that started nothing; `notes` say what happened before (a fallback)."""
    entry = platforms.get(platform)
    article = "an" if entry and entry.display[:1].lower() in "aeiou" else "a"
    what = f"{article} {entry.display} session" if entry else "the session"
    body = f"😕 Could not start {what}: {reason}"
    if notes:
        body += "\n\n" + "\n".join(f"- {note}" for note in notes)
    return marked(body, ident)


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
    return marked(
        f"🚦 Not started: the limit of {over.limit} {scope} (`limits.{over.name}`) is used "
        f"up ({over.count} of {over.limit}). {when} Someone with admin access can start "
        f"one anyway with `{command} new force=true`.",
        ident,
    )
