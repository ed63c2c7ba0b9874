"""`/mirror login` through GitLab's OAuth device authorization grant (RFC 8628), as a
state machine in the database: one `DeviceLogin` row per login,

    pending ──approved──▶ linked
       │ ├──denied──────▶ denied
       │ └──code expired▶ expired
       └──tokens but no user, or the code refused─▶ failed (start again)

polled by a worker at the server's `interval` (+5 s on each `slow_down`). Each transition
is one conditional `UPDATE … WHERE state = 'pending'`; the link itself is stored in the
same transaction as the move to `linked`, so a crash leaves either a pending login (polled
again after the restart; its device code is stored encrypted) or a finished one, never a
half-made link. The person is told the outcome once (`notified_at`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domain.accounts import AccountLink, Accounts, SlackUser
from bot.gitlab.client import GitLabClient
from bot.gitlab.errors import GitLabError
from bot.gitlab.http import GitLabHTTP
from bot.gitlab.oauth import (
    AccessDenied,
    AuthorizationPending,
    ExpiredToken,
    GitLabOAuth,
    InvalidGrant,
    OAuthTokens,
    SlowDown,
)
from bot.store.crypto import TokenCipher
from bot.store.db import transaction
from bot.store.models import DeviceLogin, utcnow

log = logging.getLogger(__name__)
SLOW_DOWN_SECONDS = 5.0  # RFC 8628 3.5: each slow_down adds 5 s to the interval
POLL_BATCH = 50

PENDING, LINKED, DENIED, EXPIRED, FAILED = "pending", "linked", "denied", "expired", "failed"


@dataclass(frozen=True)
class StartedLogin:
    """What the person is shown: the code to check, and where to approve it."""

    login_id: int
    user_code: str
    verification_uri_complete: str
    expires_at: datetime


@dataclass(frozen=True)
class FinishedLogin:
    """A login that ended and whose person has not been told yet."""

    login_id: int
    who: SlackUser
    channel_id: str
    state: str  # linked | denied | expired | failed
    response_url: str | None
    link: AccountLink | None  # when linked


class DeviceLogins:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        cipher: TokenCipher,
        oauth: GitLabOAuth,
        accounts: Accounts,
        http: GitLabHTTP,
    ) -> None:
        self._http = http
        self._sessions = sessions
        self._cipher = cipher
        self._oauth = oauth
        self._accounts = accounts

    async def start(
        self, who: SlackUser, *, channel_id: str, response_url: str | None
    ) -> StartedLogin:
        """Ask GitLab for a device code (`POST /oauth/authorize_device`, scope api) and
        record the pending login. An earlier pending login of the same person ends."""
        device = await self._oauth.authorize_device()
        now = utcnow()
        async with transaction(self._sessions) as session:
            await session.execute(
                update(DeviceLogin)
                .where(
                    DeviceLogin.slack_team_id == who.team_id,
                    DeviceLogin.slack_user_id == who.user_id,
                    DeviceLogin.state == PENDING,
                )
                .values(state=EXPIRED, finished_at=now, notified_at=now, outcome="replaced")
            )
            row = DeviceLogin(
                slack_team_id=who.team_id,
                slack_user_id=who.user_id,
                channel_id=channel_id,
                state=PENDING,
                device_code_ciphertext=self._cipher.encrypt(device.device_code),
                user_code=device.user_code,
                verification_uri_complete=device.verification_uri_complete,
                response_url_ciphertext=self._cipher.encrypt(response_url)
                if response_url
                else None,
                interval_seconds=device.interval,
                next_poll_at=now + timedelta(seconds=device.interval),
                expires_at=now + timedelta(seconds=device.expires_in),
                created_at=now,
            )
            session.add(row)
            await session.flush()
            return StartedLogin(
                row.id, device.user_code, device.verification_uri_complete, row.expires_at
            )

    async def poll_due(self) -> int:
        """Poll GitLab once for each pending login whose interval has passed; returns how
        many were polled. A login another replica claimed first is left to it."""
        now = utcnow()
        async with self._sessions() as session:
            due = (
                await session.scalars(
                    select(DeviceLogin)
                    .where(DeviceLogin.state == PENDING, DeviceLogin.next_poll_at <= now)
                    .order_by(DeviceLogin.next_poll_at)
                    .limit(POLL_BATCH)
                )
            ).all()
        polled = 0
        for row in due:
            if await self._claim(row, now):
                polled += 1
                await self._poll(row)
        return polled

    async def _claim(self, row: DeviceLogin, now: datetime) -> bool:
        async with transaction(self._sessions) as session:
            claimed = await session.execute(
                update(DeviceLogin)
                .where(
                    DeviceLogin.id == row.id,
                    DeviceLogin.state == PENDING,
                    DeviceLogin.next_poll_at == row.next_poll_at,
                )
                .values(next_poll_at=now + timedelta(seconds=row.interval_seconds))
            )
            return bool(claimed.rowcount)  # type: ignore[attr-defined]

    async def _poll(self, row: DeviceLogin) -> None:
        who = SlackUser(row.slack_team_id, row.slack_user_id)
        try:
            tokens = await self._oauth.poll_device(self._cipher.decrypt(row.device_code_ciphertext))
        except AuthorizationPending:
            if utcnow() >= row.expires_at:  # GitLab should have said expired_token by now
                await self._finish(row.id, EXPIRED)
            return
        except SlowDown:
            await self._slow_down(row)
            return
        except AccessDenied:
            await self._finish(row.id, DENIED)
            return
        except ExpiredToken:
            await self._finish(row.id, EXPIRED)
            return
        except InvalidGrant:  # e.g. a crash after GitLab issued the tokens: start again
            await self._finish(row.id, FAILED)
            return
        except GitLabError as exc:  # unreachable, 5xx: poll again at the next interval
            log.warning("polling a device login failed: %s", exc.user_message)
            return
        await self._link(row, who, tokens)

    async def _link(self, row: DeviceLogin, who: SlackUser, tokens: OAuthTokens) -> None:
        gitlab = GitLabClient(self._http, _Bearer(tokens.access_token))
        try:
            user = await gitlab.get_current_user()
        except GitLabError as exc:
            # The device code is spent; without the user there is no link to make.
            log.warning("a device login's GET /user failed: %s", exc.user_message)
            await self._revoke(tokens)
            await self._finish(row.id, FAILED)
            return
        await self._accounts.revoke_replaced(who)  # a link is replaced, never left live
        async with transaction(self._sessions) as session:
            won = await self._transition(session, row.id, LINKED, user.username)
            if won:
                await self._accounts.store_oauth_link(
                    session, who, user, tokens, channel_id=row.channel_id
                )
        self._accounts.forget(who)
        if not won:  # it ended meanwhile (replaced by a newer login): give the tokens back
            await self._revoke(tokens)

    async def _revoke(self, tokens: OAuthTokens) -> None:
        try:
            await self._oauth.revoke(tokens.refresh_token or tokens.access_token)
        except GitLabError as exc:
            log.warning("revoking unused OAuth tokens failed: %s", exc.user_message)

    async def _slow_down(self, row: DeviceLogin) -> None:
        interval = row.interval_seconds + SLOW_DOWN_SECONDS
        async with transaction(self._sessions) as session:
            await session.execute(
                update(DeviceLogin)
                .where(DeviceLogin.id == row.id, DeviceLogin.state == PENDING)
                .values(
                    interval_seconds=interval, next_poll_at=utcnow() + timedelta(seconds=interval)
                )
            )

    async def _finish(self, login_id: int, state: str) -> None:
        async with transaction(self._sessions) as session:
            await self._transition(session, login_id, state, None)

    @staticmethod
    async def _transition(
        session: AsyncSession, login_id: int, state: str, outcome: str | None
    ) -> bool:
        result = await session.execute(
            update(DeviceLogin)
            .where(DeviceLogin.id == login_id, DeviceLogin.state == PENDING)
            .values(state=state, finished_at=utcnow(), outcome=outcome)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def expire_overdue(self) -> int:
        """Pending logins past their code's lifetime end as expired, even unpolled."""
        async with transaction(self._sessions) as session:
            result = await session.execute(
                update(DeviceLogin)
                .where(DeviceLogin.state == PENDING, DeviceLogin.expires_at < utcnow())
                .values(state=EXPIRED, finished_at=utcnow())
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    async def unnotified(self) -> list[FinishedLogin]:
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(DeviceLogin)
                    .where(DeviceLogin.state != PENDING, DeviceLogin.notified_at.is_(None))
                    .order_by(DeviceLogin.id)
                    .limit(POLL_BATCH)
                )
            ).all()
        finished = []
        for row in rows:
            who = SlackUser(row.slack_team_id, row.slack_user_id)
            link = await self._accounts.get(who) if row.state == LINKED else None
            finished.append(
                FinishedLogin(
                    row.id,
                    who,
                    row.channel_id,
                    row.state,
                    self._cipher.decrypt(row.response_url_ciphertext)
                    if row.response_url_ciphertext
                    else None,
                    link,
                )
            )
        return finished

    async def mark_notified(self, login_id: int) -> bool:
        """True for the one caller (of any replica) that gets to tell the person."""
        async with transaction(self._sessions) as session:
            result = await session.execute(
                update(DeviceLogin)
                .where(DeviceLogin.id == login_id, DeviceLogin.notified_at.is_(None))
                .values(notified_at=utcnow())
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class _Bearer:
    token: str

    def __repr__(self) -> str:
        return "_Bearer(…)"

    async def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def renewed(self, rejected: dict[str, str]) -> dict[str, str] | None:
        return None
