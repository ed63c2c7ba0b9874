"""The permission table: Slack users linked to GitLab accounts through their own tokens.

Tokens are validated against GitLab (`GET /user`, `GET /personal_access_tokens/self`)
before they are stored, and stored only encrypted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import httpx
from sqlalchemy import bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domain.errors import NotLinked, TokenNotUsable
from bot.gitlab.client import GitLabClient, RetryPolicy
from bot.gitlab.errors import InsufficientScope
from bot.store.crypto import TokenCipher
from bot.store.db import transaction
from bot.store.models import LinkedAccount, utcnow

MAX_TOKEN_LENGTH = 512
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
        gitlab_http: httpx.AsyncClient,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._sessions = sessions
        self._cipher = cipher
        self._http = gitlab_http
        self._retry = retry

    def gitlab_with_token(self, token: str) -> GitLabClient:
        return GitLabClient(self._http, token, self._retry)

    async def link(self, who: SlackUser, token: str, *, linked_by: str) -> AccountLink:
        """Validate `token` against GitLab and store it (encrypted) for `who`."""
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
            return AccountLink.of(row)

    async def unlink(self, who: SlackUser) -> bool:
        async with transaction(self._sessions) as session:
            result = await session.execute(
                delete(LinkedAccount).where(
                    LinkedAccount.slack_team_id == who.team_id,
                    LinkedAccount.slack_user_id == who.user_id,
                )
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

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

    async def gitlab_for(self, who: SlackUser) -> GitLabClient:
        """A GitLab client acting as `who`; `NotLinked` if they have no link."""
        async with self._sessions() as session:
            row = await _find(session, who)
            if row is None:
                raise NotLinked()
            token = self._cipher.decrypt(row.token_ciphertext)
        return self.gitlab_with_token(token)

    async def gitlab_or_none(self, who: SlackUser) -> GitLabClient | None:
        try:
            return await self.gitlab_for(who)
        except NotLinked:
            return None


# Built once: every Slack reply looks its user up, and building the query each time cost
# more than running it.
_FIND_LINK = select(LinkedAccount).where(
    LinkedAccount.slack_team_id == bindparam("team_id"),
    LinkedAccount.slack_user_id == bindparam("user_id"),
)


async def _find(session: AsyncSession, who: SlackUser) -> LinkedAccount | None:
    result = await session.scalars(_FIND_LINK, {"team_id": who.team_id, "user_id": who.user_id})
    return result.first()
