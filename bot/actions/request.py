"""What a dispatch sends a platform: the issue's discussion (read from GitHub, filtered as
`include_comments` says) turned into a `SessionRequest` by `bot.prompt`.

The reading is the only I/O here; the prompt itself is pure and deterministic given the
dispatch's nonce, so every resend of a create carries the same request.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot import policy, prompt
from bot.actions import Context
from bot.events import Comment
from bot.ports import GitHub, SessionRequest
from bot.repo_config import RepoConfig


def build_request(
    decision: policy.Dispatch,
    config: RepoConfig,
    comments: Sequence[Comment],
    ident: str,
    nonce: str,
    *,
    branch_suffix: str = "",
) -> SessionRequest:
    found = decision.trigger
    plan = prompt.build(
        issue=found.issue,
        repository=found.repository,
        comments=comments,
        command=found.command,
        requester=found.sender.login,
        config=config,
        dispatch_id=ident,
        nonce=nonce,
        branch_suffix=branch_suffix,
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


async def read_request(
    ctx: Context, decision: policy.Dispatch, config: RepoConfig, ident: str, nonce: str
) -> SessionRequest:
    """The request of a dispatch to one platform, its discussion read now."""
    comments = await discussion(ctx.github, decision.trigger, config)
    return build_request(decision, config, comments, ident, nonce)


async def discussion(github: GitHub, found: policy.Trigger, config: RepoConfig) -> list[Comment]:
    """The issue's comments that go into the prompt, as `config.include_comments` says.

    For `collaborators`, an author counts when the collaborator permission API gives them
    triage or more; author_association is only a cheap first sieve (OWNER, MEMBER,
    COLLABORATOR are asked, the rest cannot hold such a role), since MEMBER and
    COLLABORATOR include people with read access only.
    """
    if config.include_comments == "none" or found.issue.comments <= 0:
        return []
    repo = found.repository.full_name
    comments = await github.list_comments(found.installation_id, repo, found.issue.number)
    roles: dict[str, str] = {}
    if config.include_comments == "collaborators":
        for login in prompt.authors_to_ask(comments):
            roles[login] = await github.permission(found.installation_id, repo, login)
    return prompt.discussion(
        comments,
        include=config.include_comments,
        at=found.at,
        trigger_comment_id=found.comment_id,
        roles=roles,
    )
