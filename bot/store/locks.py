"""Leadership between replicas: only the holder of a PostgreSQL advisory lock polls."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

MONITOR_LOCK_KEY = 0x6D6F6E69746F72  # "monitor"


@asynccontextmanager
async def leadership(engine: AsyncEngine, key: int = MONITOR_LOCK_KEY) -> AsyncIterator[bool]:
    """Yield True if this process holds the lock for the duration of the block.

    PostgreSQL: a session-level advisory lock on a dedicated connection, released on exit
    (or by the server if the process dies). SQLite is single-process: always the leader."""
    if engine.dialect.name != "postgresql":
        yield True
        return
    async with engine.connect() as connection:
        acquired = bool(await connection.scalar(select(func.pg_try_advisory_lock(key))))
        try:
            yield acquired
        finally:
            if acquired:
                await connection.scalar(select(func.pg_advisory_unlock(key)))
            await connection.commit()
