"""Leadership between replicas: a lease row that one replica holds and renews.

The monitor and the checks a push schedules run only on the holder. A holder that dies
(killed, its connection to the database gone) stops renewing, and another replica takes
the lease once it has expired: a bounded handover, where a session-level advisory lock
would be taken per scan and let every replica scan in turn. SQLite is one process: the
same statements work there, and it is always the leader.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import or_, update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.clock import database_now
from bot.store.models import Lease as LeaseRow

MONITOR_LEASE = "monitor"


class Lease:
    """`claim()` takes the lease if it is free or expired, or renews it if this replica
    holds it; `held` says whether it is still ours, by this process's own clock."""

    def __init__(
        self,
        engine: AsyncEngine,
        name: str,
        holder: str,
        *,
        duration: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self.name = name
        self.holder = holder
        self.duration = duration
        self._clock = clock
        self._held_until = 0.0
        self._row_exists = False

    @property
    def held(self) -> bool:
        return self._clock() < self._held_until

    async def claim(self) -> bool:
        # Counted from before the statement: the row's expiry is later than ours, so this
        # replica stops believing it leads before any other can take over.
        started = self._clock()
        dialect = self._engine.dialect.name
        now = database_now(dialect)
        async with self._engine.begin() as connection:
            if not self._row_exists:
                insert = postgres_insert if dialect == "postgresql" else sqlite_insert
                await connection.execute(
                    insert(LeaseRow)
                    .values(name=self.name, holder=None, expires_at=0.0)
                    .on_conflict_do_nothing(index_elements=["name"])
                )
                self._row_exists = True
            result = await connection.execute(
                update(LeaseRow)
                .where(
                    LeaseRow.name == self.name,
                    or_(LeaseRow.holder == self.holder, LeaseRow.expires_at < now),
                )
                .values(holder=self.holder, expires_at=now + self.duration)
            )
        held = bool(result.rowcount)
        self._held_until = started + self.duration if held else 0.0
        return held

    async def release(self) -> None:
        """Give the lease up at once (a clean stop), so another replica need not wait."""
        self._held_until = 0.0
        async with self._engine.begin() as connection:
            await connection.execute(
                update(LeaseRow)
                .where(LeaseRow.name == self.name, LeaseRow.holder == self.holder)
                .values(holder=None, expires_at=0.0)
            )
