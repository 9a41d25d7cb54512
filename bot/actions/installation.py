"""Installations and their repositories, as the app has seen them (for the status page)."""

from __future__ import annotations

from bot.actions import Context
from bot.events import InstallationEvent


async def record(ctx: Context, event: InstallationEvent) -> None:
    now = ctx.clock()
    # installation_repositories events say nothing of the installation's own state.
    action = event.action if event.event == "installation" else ""
    await ctx.store.record_installation(event.installation_id, event.account, action, now)
    await ctx.store.record_repositories(
        event.installation_id, event.repositories_added, event.repositories_removed
    )
