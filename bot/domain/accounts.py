"""The permission table: Slack users linked to GitLab accounts through their own tokens.

A link is a personal access token (validated against GitLab: `GET /user`, `GET
/personal_access_tokens/self`) or an OAuth access token with its refresh token, from the
device login (`bot/domain/device_login.py`). Tokens are stored only encrypted.

An OAuth refresh replaces both tokens and spends the old refresh token at once, so two
refreshes of one link must never both reach GitLab: one asyncio lock per link in this
process, and the link's row locked (`SELECT … FOR UPDATE`) across replicas; whoever gets
the lock second re-reads the row and finds the work done.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domain import audit
from bot.domain.errors import LinkBroken, NotLinked, TokenNotUsable
from bot.gitlab.budget import RequestBudget
from bot.gitlab.client import GitLabClient, RetryPolicy
from bot.gitlab.errors import GitLabError, InsufficientScope
from bot.gitlab.http import GitLabHTTP
from bot.gitlab.models import GitLabUser
from bot.gitlab.oauth import GitLabOAuth, InvalidGrant, OAuthTokens
from bot.store.crypto import TokenCipher
from bot.store.db import transaction
from bot.store.models import LinkedAccount, utcnow

log = logging.getLogger(__name__)
MAX_TOKEN_LENGTH = 512
PAT, OAUTH = "pat", "oauth"  # link kinds
# An OAuth access token is renewed this long before GitLab's 2 hours are up, so a
# command started near the end does not meet a 401 half-way.
REFRESH_BEFORE_EXPIRY = timedelta(minutes=5)
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
    kind: str = PAT
    access_expires_at: datetime | None = None  # OAuth: until when the access token works
    broken: bool = False  # OAuth: GitLab refused the refresh token; log in again

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
            row.link_kind,
            row.access_expires_at,
            row.broken_at is not None,
        )


class Accounts:
    """Link, unlink and look up accounts; hand out a GitLab client with a person's token."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        cipher: TokenCipher,
        gitlab_http: GitLabHTTP,
        retry: RetryPolicy | None = None,
        oauth: GitLabOAuth | None = None,
    ) -> None:
        self._sessions = sessions
        self._cipher = cipher
        self._http = gitlab_http
        self._retry = retry
        self.oauth = oauth
        self._tokens = _RecentTokens(TOKEN_CACHE_SECONDS)
        self._refreshing: dict[SlackUser, asyncio.Lock] = {}

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
        await self._revoke_oauth(who)  # a token replacing an OAuth login ends that login
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
            row.link_kind = PAT
            row.refresh_token_ciphertext = None
            row.access_expires_at = None
            row.broken_at = None
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

    async def store_oauth_link(
        self,
        session: AsyncSession,
        who: SlackUser,
        user: GitLabUser,
        tokens: OAuthTokens,
        *,
        channel_id: str | None,
    ) -> AccountLink:
        """Store an OAuth link in `session`'s transaction (the device login's, so a login
        is linked and finished together or not at all). Call `forget` after the commit."""
        row = await _find(session, who)
        if row is None:
            row = LinkedAccount(slack_team_id=who.team_id, slack_user_id=who.user_id)
            session.add(row)
        row.gitlab_user_id = user.id
        row.gitlab_username = user.username
        row.link_kind = OAUTH
        row.broken_at = None
        self._store_tokens(row, tokens)
        row.token_expires_at = None
        row.linked_by = who.user_id
        row.linked_at = utcnow()
        audit.record(
            session,
            actor=who.user_id,
            event=audit.AuditEvent.EXECUTED,
            operation=audit.Action.LINK,
            project=None,
            result=f"linked to GitLab user {user.username} (id {user.id}) by OAuth device login",
            channel=channel_id,
            subject=who.user_id,
        )
        return AccountLink.of(row)

    def _store_tokens(self, row: LinkedAccount, tokens: OAuthTokens) -> None:
        row.token_ciphertext = self._cipher.encrypt(tokens.access_token)
        row.refresh_token_ciphertext = (
            self._cipher.encrypt(tokens.refresh_token) if tokens.refresh_token else None
        )
        row.access_expires_at = tokens.expires_at
        row.token_scopes = ",".join(tokens.scopes)

    def forget(self, who: SlackUser) -> None:
        self._tokens.forget(who)

    async def refreshed_access(self, who: SlackUser, *, stale: str) -> tuple[str, datetime | None]:
        """A working access token for `who`'s OAuth link, `stale` being the one that GitLab
        refused or that is about to expire. Refreshes at most once however many callers
        ask at once, here or on other replicas; `LinkBroken` when GitLab refuses."""
        lock = self._refreshing.setdefault(who, asyncio.Lock())
        async with lock:
            broken = False
            async with transaction(self._sessions) as session:
                params = {"team_id": who.team_id, "user_id": who.user_id}
                row = (await session.scalars(_FIND_LINK_FOR_UPDATE, params)).first()
                if row is None or row.link_kind != OAUTH:
                    raise NotLinked()
                if row.broken_at is not None:
                    raise LinkBroken()
                current = self._cipher.decrypt(row.token_ciphertext)
                if current != stale and not _due(row.access_expires_at):
                    return current, row.access_expires_at  # refreshed meanwhile, elsewhere
                if self.oauth is None or row.refresh_token_ciphertext is None:
                    raise LinkBroken()
                try:
                    tokens = await self.oauth.refresh(
                        self._cipher.decrypt(row.refresh_token_ciphertext)
                    )
                except InvalidGrant:
                    # Spent or revoked: no retry can mend it; the person logs in again.
                    row.broken_at = utcnow()
                    broken = True
                else:
                    self._store_tokens(row, tokens)
            self._tokens.forget(who)
            if broken:
                log.warning("an OAuth link's refresh token was refused; marked broken")
                raise LinkBroken()
            return tokens.access_token, tokens.expires_at

    async def unlink(
        self, who: SlackUser, *, by: str | None = None, channel_id: str | None = None
    ) -> bool:
        """Delete `who`'s link and token (an OAuth link's tokens are first revoked at
        GitLab); audited as done by `by` (default: `who`)."""
        await self._revoke_oauth(who)
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

    async def revoke_replaced(self, who: SlackUser) -> None:
        """Before a new OAuth link replaces `who`'s: end the old one at GitLab."""
        await self._revoke_oauth(who)

    async def _revoke_oauth(self, who: SlackUser) -> None:
        async with self._sessions() as session:
            row = await _find(session, who)
            if row is None or row.link_kind != OAUTH or self.oauth is None:
                return
            # Doorkeeper keeps both tokens in one grant: revoking one revokes the pair.
            token = self._cipher.decrypt(row.refresh_token_ciphertext or row.token_ciphertext)
        try:
            await self.oauth.revoke(token)
        except GitLabError as exc:  # forget it anyway; GitLab expires it within 2 hours
            log.warning("revoking an OAuth token at GitLab failed: %s", exc.user_message)

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
        found = self._tokens.get(who)
        if found is None:
            generation = self._tokens.generation
            async with self._sessions() as session:
                row = await _find(session, who)
                if row is None:
                    raise NotLinked()
                if row.broken_at is not None:
                    raise LinkBroken()
                found = _CachedToken(
                    self._cipher.decrypt(row.token_ciphertext),
                    row.link_kind == OAUTH,
                    row.access_expires_at,
                )
            self._tokens.put(who, found, generation)
        if found.oauth:
            budget = budget_for(found.token) if budget_for is not None else None
            return GitLabClient(
                self._http,
                _OAuthLink(self, who, found.token, found.valid_until),
                self._retry,
                budget=budget,
            )
        return self.gitlab_with_token(found.token, budget_for)

    async def gitlab_or_none(self, who: SlackUser) -> GitLabClient | None:
        try:
            return await self.gitlab_for(who)
        except NotLinked:
            return None


async def gitlab_user_of(gitlab: GitLabClient) -> GitLabUser:
    """Whose token this is, as GitLab says now (`GET /user`), not as the link remembers it:
    the identity that four eyes compares."""
    return await gitlab.get_current_user()


def _due(valid_until: datetime | None) -> bool:
    return valid_until is not None and valid_until - REFRESH_BEFORE_EXPIRY <= utcnow()


class _OAuthLink:
    """A person's OAuth credentials for one GitLab client: `Authorization: Bearer`,
    renewed through `Accounts.refreshed_access` before expiry or after a 401."""

    def __init__(
        self, accounts: Accounts, who: SlackUser, token: str, valid_until: datetime | None
    ) -> None:
        self._accounts = accounts
        self._who = who
        self._token = token
        self._valid_until = valid_until

    def __repr__(self) -> str:
        return "OAuthLink(…)"

    async def headers(self) -> dict[str, str]:
        if _due(self._valid_until):
            await self._renew(self._token)
        return {"Authorization": f"Bearer {self._token}"}

    async def renewed(self, rejected: dict[str, str]) -> dict[str, str] | None:
        await self._renew(rejected.get("Authorization", "").removeprefix("Bearer "))
        return {"Authorization": f"Bearer {self._token}"}

    async def _renew(self, stale: str) -> None:
        self._token, self._valid_until = await self._accounts.refreshed_access(
            self._who, stale=stale
        )


@dataclass(frozen=True)
class _CachedToken:
    token: str
    oauth: bool
    valid_until: datetime | None

    def __repr__(self) -> str:
        return f"_CachedToken(oauth={self.oauth})"


class _RecentTokens:
    """Decrypted tokens looked up in the last `seconds`, in this process's memory only."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._tokens: dict[SlackUser, tuple[float, _CachedToken]] = {}
        # Bumped by every change, so a lookup that raced a change does not store its answer.
        self.generation = 0

    def get(self, who: SlackUser) -> _CachedToken | None:
        found = self._tokens.get(who)
        if found is None or found[0] < time.monotonic():
            return None
        return found[1]

    def put(self, who: SlackUser, token: _CachedToken, generation: int) -> None:
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


_FIND_LINK_FOR_UPDATE = _FIND_LINK.with_for_update()


async def _find(session: AsyncSession, who: SlackUser) -> LinkedAccount | None:
    result = await session.scalars(_FIND_LINK, {"team_id": who.team_id, "user_id": who.user_id})
    return result.first()
