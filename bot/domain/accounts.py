"""The permission table: Slack users linked to GitLab accounts through their own tokens.

Tokens are validated against GitLab (`GET /user`, `GET /personal_access_tokens/self`)
before they are stored, and stored only encrypted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from sqlalchemy import bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domain import audit
from bot.domain.errors import NotLinked, TokenNotUsable
from bot.gitlab.budget import RequestBudget
from bot.gitlab.client import GitLabClient, RetryPolicy
from bot.gitlab.errors import InsufficientScope
from bot.gitlab.http import GitLabHTTP
from bot.gitlab.models import GitLabUser
from bot.store.crypto import TokenCipher
from bot.store.db import transaction
from bot.store.models import LinkedAccount, utcnow

MAX_TOKEN_LENGTH = 512
# Every command and click needs its user's token. A lookup through the async engine costs
# about as much CPU as the rest of the request, so tokens are kept this long. A link
# changed here is seen at once; one changed by the CLI or another replica within this.
TOKEN_CACHE_SECONDS = 10.0
_NEEDS_API = "it needs `api` (or `read_api` for read-only use)"


@dataclass(frozen=True)
class SlackUser:
    team_id: str
    user_id: str


@dataclass(frozen=True)
class AccountLink:
    """What the bot knows of a link; never the token."""

    slack_team_id: str
    slack_user_id: str
    gitlab_user_id: int
    gitlab_username: str
    scopes: tuple[str, ...]
    expires_at: date | None

    @property
    def read_only(self) -> bool:
        return bool(self.scopes) and "api" not in self.scopes

    @staticmethod
    def of(row: LinkedAccount) -> AccountLink:
        return AccountLink(
            row.slack_team_id,
            row.slack_user_id,
            row.gitlab_user_id,
            row.gitlab_username,
            tuple(s for s in row.token_scopes.split(",") if s),
            row.token_expires_at,
        )


class Accounts:
    """Link, unlink and look up accounts; hand out a GitLab client with a person's token."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        cipher: TokenCipher,
        gitlab_http: GitLabHTTP,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._sessions = sessions
        self._cipher = cipher
        self._http = gitlab_http
        self._retry = retry
        self._tokens = _RecentTokens(TOKEN_CACHE_SECONDS)

    def gitlab_with_token(
        self, token: str, budget_for: Callable[[str], RequestBudget] | None = None
    ) -> GitLabClient:
        """`budget_for` paces background reads with the token's share of the budget."""
        budget = budget_for(token) if budget_for is not None else None
        return GitLabClient(self._http, token, self._retry, budget=budget)

    async def link(
        self, who: SlackUser, token: str, *, linked_by: str, channel_id: str | None = None
    ) -> AccountLink:
        """Validate `token` against GitLab and store it (encrypted) for `who`; audited as
        done by `linked_by` (a Slack user id, or `cli`)."""
        token = token.strip()
        if not token or len(token) > MAX_TOKEN_LENGTH or any(c.isspace() for c in token):
            raise TokenNotUsable("that does not look like a GitLab personal access token")
        gitlab = self.gitlab_with_token(token)
        try:
            user = await gitlab.get_current_user()  # TokenRejected if GitLab refuses it
        except InsufficientScope:
            raise TokenNotUsable(_NEEDS_API) from None
        details = await gitlab.get_current_token()
        scopes = tuple(details.scopes) if details else ()
        if scopes and not {"api", "read_api"} & set(scopes):
            raise TokenNotUsable(f"that token has the scopes {', '.join(scopes)}; {_NEEDS_API}")
        if details and details.expires_at and details.expires_at < date.today():
            raise TokenNotUsable("that token has expired; create a new one")
        async with transaction(self._sessions) as session:
            row = await _find(session, who)
            if row is None:
                row = LinkedAccount(slack_team_id=who.team_id, slack_user_id=who.user_id)
                session.add(row)
            row.gitlab_user_id = user.id
            row.gitlab_username = user.username
            row.token_ciphertext = self._cipher.encrypt(token)
            row.token_scopes = ",".join(scopes)
            row.token_expires_at = details.expires_at if details else None
            row.linked_by = linked_by
            row.linked_at = utcnow()
            link = AccountLink.of(row)
            audit.record(
                session,
                actor=linked_by,
                event=audit.AuditEvent.EXECUTED,
                operation=audit.Action.LINK,
                project=None,
                result=f"linked to GitLab user {user.username} (id {user.id})",
                channel=channel_id,
                subject=who.user_id,
            )
        self._tokens.forget(who)  # after the commit: a lookup racing it stores nothing
        return link

    async def unlink(
        self, who: SlackUser, *, by: str | None = None, channel_id: str | None = None
    ) -> bool:
        """Delete `who`'s link and token; audited as done by `by` (default: `who`)."""
        async with transaction(self._sessions) as session:
            result = await session.execute(
                delete(LinkedAccount).where(
                    LinkedAccount.slack_team_id == who.team_id,
                    LinkedAccount.slack_user_id == who.user_id,
                )
            )
            removed = bool(result.rowcount)  # type: ignore[attr-defined]
            if removed:
                audit.record(
                    session,
                    actor=by or who.user_id,
                    event=audit.AuditEvent.EXECUTED,
                    operation=audit.Action.UNLINK,
                    project=None,
                    result="link and stored token deleted",
                    channel=channel_id,
                    subject=who.user_id,
                )
        self._tokens.forget(who)
        return removed

    async def get(self, who: SlackUser) -> AccountLink | None:
        async with self._sessions() as session:
            row = await _find(session, who)
            return AccountLink.of(row) if row else None

    async def list_links(self, team_id: str | None = None) -> list[AccountLink]:
        query = select(LinkedAccount).order_by(
            LinkedAccount.slack_team_id, LinkedAccount.slack_user_id
        )
        if team_id:
            query = query.where(LinkedAccount.slack_team_id == team_id)
        async with self._sessions() as session:
            return [AccountLink.of(row) for row in (await session.scalars(query)).all()]

    async def gitlab_for(
        self, who: SlackUser, budget_for: Callable[[str], RequestBudget] | None = None
    ) -> GitLabClient:
        """A GitLab client acting as `who`; `NotLinked` if they have no link."""
        token = self._tokens.get(who)
        if token is None:
            generation = self._tokens.generation
            async with self._sessions() as session:
                row = await _find(session, who)
                if row is None:
                    raise NotLinked()
                token = self._cipher.decrypt(row.token_ciphertext)
            self._tokens.put(who, token, generation)
        return self.gitlab_with_token(token, budget_for)

    async def gitlab_or_none(self, who: SlackUser) -> GitLabClient | None:
        try:
            return await self.gitlab_for(who)
        except NotLinked:
            return None


async def gitlab_user_of(gitlab: GitLabClient) -> GitLabUser:
    """Whose token this is, as GitLab says now (`GET /user`), not as the link remembers it:
    the identity that four eyes compares."""
    return await gitlab.get_current_user()


class _RecentTokens:
    """Decrypted tokens looked up in the last `seconds`, in this process's memory only."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._tokens: dict[SlackUser, tuple[float, str]] = {}
        # Bumped by every change, so a lookup that raced a change does not store its answer.
        self.generation = 0

    def get(self, who: SlackUser) -> str | None:
        found = self._tokens.get(who)
        if found is None or found[0] < time.monotonic():
            return None
        return found[1]

    def put(self, who: SlackUser, token: str, generation: int) -> None:
        if generation != self.generation:
            return
        now = time.monotonic()
        if len(self._tokens) >= 1000:  # a workspace's active users; drop the expired
            self._tokens = {k: v for k, v in self._tokens.items() if v[0] >= now}
        self._tokens[who] = (now + self._seconds, token)

    def forget(self, who: SlackUser) -> None:
        self.generation += 1
        self._tokens.pop(who, None)


# Built once: every Slack reply looks its user up, and building the query each time cost
# more than running it.
_FIND_LINK = select(LinkedAccount).where(
    LinkedAccount.slack_team_id == bindparam("team_id"),
    LinkedAccount.slack_user_id == bindparam("user_id"),
)


async def _find(session: AsyncSession, who: SlackUser) -> LinkedAccount | None:
    result = await session.scalars(_FIND_LINK, {"team_id": who.team_id, "user_id": who.user_id})
    return result.first()
