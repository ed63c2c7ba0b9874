"""The service token's request budget, shared through the database by every replica.

The token has `per_minute` slots (rows). A request takes a slot whose last use is more than
a window ago and stamps it, in one conditional UPDATE (`SKIP LOCKED` on PostgreSQL, so two
replicas take different slots): N slots can never carry N + 1 requests within one window,
however many replicas draw on them. Times are the database's clock. A replica claims as
many slots at once as it has requests waiting, and uses each at once or never (`HOLD`).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import deque

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.gitlab.budget import RateLimitPacer
from bot.gitlab.http import RateLimitHeaders
from bot.store.clock import database_now
from bot.store.models import RequestSlot

MAX_CLAIM = 100  # slots claimed in one statement
HOLD = 0.5  # seconds
INSERT_CHUNK = 1000


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
        # A claimed slot is stamped this far ahead and must be used before then, so its
        # stamp is never earlier than the request it carries. Longer than a claim takes
        # on a busy database, or claimed slots would go stale before they are used.
        self._hold = HOLD
        self._held: deque[float] = deque()  # until when each claimed, unused slot is good
        self._wanted = 0  # requests waiting in this process
        self._lock = asyncio.Lock()  # first come, first served
        self._slots_ready = False
        self.pacer = RateLimitPacer()

    async def acquire(self) -> None:
        # GitLab's word first: a wait there must not make a claimed slot stale.
        await self.pacer.before_request()
        self._wanted += 1
        try:
            async with self._lock:
                await self._take_slot()
        except BaseException:
            self.pacer.after_answer(None)
            raise
        finally:
            self._wanted -= 1

    def answered(self, rate_limit: RateLimitHeaders | None) -> None:
        self.pacer.after_answer(rate_limit)

    async def used_in_window(self) -> int:
        """Slots used within the last window, by every replica."""
        now = database_now(self._engine.dialect.name)
        async with self._engine.connect() as connection:
            used = await connection.scalar(
                select(func.count())
                .select_from(RequestSlot)
                .where(
                    RequestSlot.token_key == self._key,
                    RequestSlot.slot < self.per_minute,
                    RequestSlot.used_at > now - self._window,
                )
            )
        return int(used or 0)

    async def _take_slot(self) -> None:
        while True:
            now = time.monotonic()
            while self._held and self._held[0] <= now:
                self._held.popleft()  # not used in time: its stamp may be past
            if self._held:
                self._held.popleft()
                return
            claimed, wait = await self._claim(max(1, min(self._wanted, MAX_CLAIM)))
            self._held.extend([now + self._hold] * claimed)
            if not claimed:
                await asyncio.sleep(wait)

    async def _claim(self, count: int) -> tuple[int, float]:
        """Claim up to `count` free slots: (how many, else seconds until one frees)."""
        dialect = self._engine.dialect.name
        now = database_now(dialect)
        async with self._engine.begin() as connection:
            if not self._slots_ready:
                await self._create_slots(connection, dialect)
            free = (
                select(RequestSlot.slot)
                .where(
                    RequestSlot.token_key == self._key,
                    RequestSlot.slot < self.per_minute,
                    RequestSlot.used_at <= now - self._window,
                )
                .order_by(RequestSlot.used_at)
                .limit(count)
            )
            if dialect == "postgresql":
                free = free.with_for_update(skip_locked=True)
            # A CTE, evaluated once: as `slot IN (subquery)` PostgreSQL may run the
            # subquery again for every row, and claim them all.
            chosen = free.cte("chosen")
            result = await connection.execute(
                update(RequestSlot)
                .where(RequestSlot.token_key == self._key, RequestSlot.slot == chosen.c.slot)
                .values(used_at=now + self._hold)
                .returning(RequestSlot.slot)  # counted so: a rowcount after WITH may be -1
            )
            claimed = len(result.all())
            if claimed:
                return claimed, 0.0
            next_free = await connection.scalar(
                select(func.min(RequestSlot.used_at) + self._window - now).where(
                    RequestSlot.token_key == self._key, RequestSlot.slot < self.per_minute
                )
            )
        # Another replica may take that slot first: then look again.
        return 0, min(5.0, max(0.005, float(next_free or 0.0)))

    async def _create_slots(self, connection: AsyncConnection, dialect: str) -> None:
        insert = postgres_insert if dialect == "postgresql" else sqlite_insert
        for start in range(0, self.per_minute, INSERT_CHUNK):
            rows = [
                {"token_key": self._key, "slot": slot, "used_at": 0.0}
                for slot in range(start, min(self.per_minute, start + INSERT_CHUNK))
            ]
            await connection.execute(insert(RequestSlot).values(rows).on_conflict_do_nothing())
        self._slots_ready = True
