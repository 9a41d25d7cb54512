"""A decision pinned in the job's journal: the first attempt decides, every later one (on
any replica) acts on the same decision, with the session records as they are now."""

from __future__ import annotations

from bot import policy
from bot.actions import Context
from bot.actions.stop import can
from bot.journal import Pin


def pinned(decision: policy.Decision) -> Pin | None:
    """What an acting decision pins in the journal, so every later attempt (on any
    replica) acts on the same decision; None for one that does not act."""
    if isinstance(decision, policy.Dispatch):
        return Pin(
            "dispatch",
            platform=decision.platform,
            agent=decision.agent,
            force=decision.force,
            platforms=decision.fanout,
        )
    if isinstance(decision, policy.FollowUp):
        chosen = (*decision.sessions, *decision.unable)
        return Pin("follow_up", sessions=tuple(s.dispatch_id for s in chosen))
    if isinstance(decision, policy.Stop):
        return Pin("stop", sessions=tuple(s.dispatch_id for s in decision.sessions))
    if isinstance(decision, policy.Pick):
        chosen = (decision.winner, *decision.others)
        return Pin("pick", sessions=tuple(s.dispatch_id for s in chosen))
    return None


async def unpin(ctx: Context, found: policy.Trigger, pin: Pin) -> policy.Decision:
    """The decision an earlier attempt pinned, with the session records as they are now."""
    if pin.kind == "dispatch":
        return policy.Dispatch(
            found, pin.platform, pin.agent, force=pin.force, fanout=pin.platforms
        )
    records = {
        r.dispatch_id: r
        for r in await ctx.store.sessions_for_issue(found.repository.full_name, found.issue.number)
    }
    if pin.kind == "follow_up":
        chosen = [records[d] for d in pin.sessions if d in records]
        able = tuple(r for r in chosen if can(ctx, r.platform, "can_message"))
        if able:
            unable = tuple(r for r in chosen if r not in able)
            return policy.FollowUp(found, able, unable)
    if pin.kind == "stop":
        return policy.Stop(found, tuple(records[d] for d in pin.sessions if d in records))
    if pin.kind == "pick" and pin.sessions and pin.sessions[0] in records:
        others = tuple(records[d] for d in pin.sessions[1:] if d in records)
        return policy.Pick(found, records[pin.sessions[0]], others)
    return policy.Ignore("the session an earlier attempt acted on is gone")
