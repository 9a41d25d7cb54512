"""A dispatch's one status comment: posted once, then edited; never posted twice."""

from __future__ import annotations

import dataclasses

from bot import dispatch_status
from bot.actions import Context, dispatch_id
from bot.journal import Progress
from bot.ports import Priority


class StatusComment:
    """The dispatch's one status comment: posted once, then edited.

    Its id is journaled; `status_comment_pending` is journaled before posting, so after a
    crash between the two the next attempt finds the comment instead of posting another.
    """

    def __init__(
        self, ctx: Context, progress: Progress, installation: int, repo: str, issue: int
    ) -> None:
        self.ctx = ctx
        self.progress = progress
        self.installation = installation
        self.repo = repo
        self.issue = issue
        self.ident = dispatch_id(progress.job)

    @property
    def comment_id(self) -> int | None:
        return self.progress.journal.status_comment_id

    async def post(self, body: str, priority: Priority = Priority.REPLY) -> int:
        installation, repo, number = self.installation, self.repo, self.issue
        journal = self.progress.journal
        comment_id = journal.status_comment_id
        if comment_id is None and journal.status_comment_pending:
            comment_id = await self._find(installation, repo, number)
            if comment_id is not None:
                await self._remember(comment_id)
        if comment_id is not None:
            await self.ctx.github.update_comment(
                installation, repo, comment_id, body, priority=priority
            )
            return comment_id
        await self.progress.write(dataclasses.replace(journal, status_comment_pending=True))
        comment_id = await self.ctx.github.create_comment(
            installation, repo, number, body, priority=priority
        )
        await self._remember(comment_id)
        return comment_id

    async def _remember(self, comment_id: int) -> None:
        journal = dataclasses.replace(self.progress.journal, status_comment_id=comment_id)
        await self.progress.write(journal)

    async def _find(self, installation: int, repo: str, number: int) -> int | None:
        # Only the App's own comments count: anyone can paste the markers into theirs.
        comments = await self.ctx.github.list_comments(installation, repo, number)
        login = await self.ctx.github.app_login()
        return dispatch_status.status_comment_id(comments, self.ident, login)
