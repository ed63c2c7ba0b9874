"""Slack request signatures admitted once, remembered in the database for every replica.

Slack signs each request it sends anew, so a valid signature that comes again is a
captured request replayed (bot/slack/replays.py). The signatures that arrive together are
recorded in one statement: a burst of 500 commands costs a few dozen, not 500 writes.
"""

from __future__ import annotations

import asyncio
import hashlib

from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.clock import database_now
from bot.store.models import SeenSlackRequest

BATCH = 500


class SeenSlackRequests:
    def __init__(self, engine: AsyncEngine, remember_for: float) -> None:
        self._engine = engine
        # Twice Slack's window: a row kept longer costs nothing, while one pruned early
        # would let a replay in.
        self._remember_for = 2 * remember_for
        self._waiting: dict[str, asyncio.Future[bool]] = {}
        self._recorder: asyncio.Task[None] | None = None

    async def first_time(self, signature: str) -> bool:
        """Record `signature`; False if it was recorded before, by any replica."""
        digest = hashlib.sha256(signature.encode("latin-1")).hexdigest()
        if digest in self._waiting:  # the same signature twice at once: one gets in
            return False
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting[digest] = answer
        if self._recorder is None or self._recorder.done():
            self._recorder = asyncio.ensure_future(self._record_waiting())
        return await answer

    async def _record_waiting(self) -> None:
        await asyncio.sleep(0)  # those that arrive in the same turn go in the same statement
        while self._waiting:
            # At most BATCH a statement: well within any database's parameters per statement.
            batch = dict(list(self._waiting.items())[:BATCH])
            for digest in batch:
                del self._waiting[digest]
            try:
                inserted = await self._insert(sorted(batch))
            except Exception as exc:
                for answer in batch.values():
                    if not answer.done():
                        answer.set_exception(exc)
            else:
                for digest, answer in batch.items():
                    if not answer.done():
                        answer.set_result(digest in inserted)

    async def _insert(self, digests: list[str]) -> set[str]:
        dialect = self._engine.dialect.name
        insert = postgres_insert if dialect == "postgresql" else sqlite_insert
        expires_at = database_now(dialect) + self._remember_for
        async with self._engine.begin() as connection:
            result = await connection.execute(
                insert(SeenSlackRequest)
                .values([{"signature_sha256": d, "expires_at": expires_at} for d in digests])
                .on_conflict_do_nothing(index_elements=["signature_sha256"])
                # What was inserted, not a row count: psycopg counts a skipped row too.
                .returning(SeenSlackRequest.signature_sha256)
            )
            return set(result.scalars())
