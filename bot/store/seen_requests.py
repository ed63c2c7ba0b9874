"""Slack request signatures admitted once, remembered in the database for every replica.

Slack signs each request it sends anew, so a valid signature that comes again is a
captured request replayed. The signature check refuses one older than 5 minutes; within
those 5 minutes this table refuses the copy, whichever replica it reaches. A replica
remembers what it admitted in memory too, so its own replays cost no query.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.store.clock import database_now
from bot.store.models import SeenSlackRequest


class SeenSlackRequests:
    def __init__(self, engine: AsyncEngine, remember_for: float) -> None:
        self._engine = engine
        # Twice Slack's window: hosts' clocks may disagree, and a row kept longer costs
        # nothing, while one pruned early would let a replay in.
        self._remember_for = 2 * remember_for

    async def first_time(self, signature: str) -> bool:
        """Record `signature`; False if any replica recorded it before."""
        digest = hashlib.sha256(signature.encode("latin-1")).hexdigest()
        dialect = self._engine.dialect.name
        insert = postgres_insert if dialect == "postgresql" else sqlite_insert
        async with self._engine.begin() as connection:
            result = await connection.execute(
                insert(SeenSlackRequest)
                .values(
                    signature_sha256=digest,
                    expires_at=database_now(dialect) + self._remember_for,
                )
                .on_conflict_do_nothing(index_elements=["signature_sha256"])
                # What was inserted, not a row count: psycopg counts a skipped row too.
                .returning(SeenSlackRequest.signature_sha256)
            )
            return result.first() is not None


async def forget_expired(session: AsyncSession) -> int:
    """Forget signatures past their time (a replay of one is refused by its age)."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    result = await session.execute(
        delete(SeenSlackRequest).where(SeenSlackRequest.expires_at < database_now(dialect))
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
