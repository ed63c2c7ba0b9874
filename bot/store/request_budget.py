"""The service token's request budget, shared through the database by every replica.

Each replica claims requests in grants: a row saying "n requests at time t" for the token.
A claim locks the token's row (`FOR UPDATE` on PostgreSQL, the write lock on SQLite),
sums the grants of the last window and adds one only within the budget, so no window
holds more than the budget however many replicas draw on it. Times are the database's
clock. A replica claims as many requests at once as it has waiting (or took lately), and
uses each at once or never (`HOLD`), so one claim serves a whole fan-out.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import deque

from sqlalchemy import ColumnElement, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.gitlab.budget import RateLimitPacer
from bot.gitlab.http import RateLimitHeaders
from bot.store.clock import database_now
from bot.store.models import RequestBudgetRow, RequestGrant

MAX_CLAIM = 100  # requests in one grant
# A grant is stamped this far ahead and used before then, so its stamp is never earlier
# than the requests it carries. Longer than a claim takes on a busy database, or claimed
# requests would go stale before they are sent.
HOLD = 0.5  # seconds


def token_key(token: str) -> str:
    """What the database knows of a token: enough to tell tokens apart, never the token."""
    return hashlib.sha256(f"mirrorbot-budget:{token}".encode()).hexdigest()


class SharedRequestBudget:
    """At most `per_minute` requests with `token` in any `window` seconds, across every
    replica on this database; and never past what GitLab says is left (`RateLimitPacer`)."""

    def __init__(
        self,
        engine: AsyncEngine,
        token: str,
        per_minute: int,
        *,
        window: float = 60.0,
        margin: float = 0.02,
    ) -> None:
        if per_minute <= 0:
            raise ValueError("the budget must allow at least one request per window")
        self._engine = engine
        self._key = token_key(token)
        self.per_minute = per_minute
        # Requests reach GitLab a little after they leave (a new connection takes longer
        # than a warm one); a slightly longer window keeps that jitter from putting more
        # than the budget into one of GitLab's windows.
        self._window = window * (1 + margin)
        self._held: deque[float] = deque()  # until when each claimed, unsent request is good
        self._taken: deque[float] = deque()  # when requests were taken, within the last HOLD
        self._wanted = 0  # requests waiting in this process
        self._lock = asyncio.Lock()  # first come, first served
        self._row_exists = False
        self.pacer = RateLimitPacer()

    async def acquire(self) -> None:
        # GitLab's word first: a wait there must not make a claimed request stale.
        await self.pacer.before_request()
        self._wanted += 1
        try:
            async with self._lock:
                await self._take()
        except BaseException:
            self.pacer.not_sent()
            raise
        finally:
            self._wanted -= 1

    def answered(self, rate_limit: RateLimitHeaders | None) -> None:
        self.pacer.after_answer(rate_limit)

    async def used_in_window(self) -> int:
        """Requests granted within the last window, to every replica."""
        async with self._engine.connect() as connection:
            return await self._used(connection, database_now(self._engine.dialect.name))

    async def _take(self) -> None:
        while True:
            now = time.monotonic()
            while self._held and self._held[0] <= now:
                self._held.popleft()  # not sent in time: its stamp may be past
            if self._held:
                self._held.popleft()
                self._taken.append(now)
                return
            granted, wait = await self._claim(self._claim_size(now))
            self._held.extend([now + HOLD] * granted)
            if not granted:
                await asyncio.sleep(wait)

    def _claim_size(self, now: float) -> int:
        """What is waiting now, or what was taken within the last `HOLD` if more: a claim
        per request would make the database the bottleneck of a fan-out. Requests claimed
        ahead and not sent are lost for a window, so ahead means 5 % of the budget at most."""
        while self._taken and self._taken[0] <= now - HOLD:
            self._taken.popleft()
        ahead = min(len(self._taken), self.per_minute // 20)
        return max(1, min(max(self._wanted, ahead), MAX_CLAIM))

    async def _claim(self, count: int) -> tuple[int, float]:
        """Claim up to `count` requests: (how many, else seconds until some free up)."""
        dialect = self._engine.dialect.name
        now = database_now(dialect)
        async with self._engine.begin() as connection:
            if not self._row_exists:
                insert_ignoring = postgres_insert if dialect == "postgresql" else sqlite_insert
                await connection.execute(
                    insert_ignoring(RequestBudgetRow)
                    .values(token_key=self._key, claims=0)
                    .on_conflict_do_nothing(index_elements=["token_key"])
                )
                self._row_exists = True
            # The lock every replica's claim for this token waits for, held to the commit.
            await connection.execute(
                update(RequestBudgetRow)
                .where(RequestBudgetRow.token_key == self._key)
                .values(claims=RequestBudgetRow.claims + 1)
            )
            await connection.execute(
                delete(RequestGrant).where(
                    RequestGrant.token_key == self._key,
                    RequestGrant.granted_at <= now - self._window - HOLD,
                )
            )
            free = self.per_minute - await self._used(connection, now)
            if free > 0:
                granted = min(count, free)
                await connection.execute(
                    insert(RequestGrant).values(
                        token_key=self._key, granted_at=now + HOLD, requests=granted
                    )
                )
                return granted, 0.0
            frees_up = await connection.scalar(
                select(func.min(RequestGrant.granted_at) + self._window - now).where(
                    RequestGrant.token_key == self._key,
                    RequestGrant.granted_at > now - self._window,
                )
            )
        return 0, min(5.0, max(0.005, float(frees_up or 0.0)))

    async def _used(self, connection: AsyncConnection, now: ColumnElement[float]) -> int:
        used = await connection.scalar(
            select(func.coalesce(func.sum(RequestGrant.requests), 0)).where(
                RequestGrant.token_key == self._key,
                RequestGrant.granted_at > now - self._window,
            )
        )
        return int(used or 0)
