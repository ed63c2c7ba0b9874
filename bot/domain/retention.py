"""Retention: what the bot no longer needs is deleted, so no table grows without bound.

Kept for `MIRRORBOT_RETENTION_DAYS`, then deleted: processed webhook events (long enough
to recognise GitLab's retries of a delivery), delivered or abandoned Slack messages,
resolved alerts, checks that never ran and finished device logins; Slack request
signatures once past the 10 minutes they are kept (bot.store.seen_requests). The audit
log is kept.

Deletes go in small batches, each its own short transaction, so the intake, the passes
and the senders never wait long behind the pruner; on PostgreSQL a batch skips rows
another replica's pruner holds.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from bot.store.clock import database_now
from bot.store.db import transaction
from bot.store.models import (
    AlertMessage,
    DeviceLogin,
    OutboxMessage,
    ScheduledCheck,
    SeenSlackRequest,
    WebhookEvent,
    utcnow,
)

BATCH = 1000


@dataclass
class Pruned:
    """Rows deleted per table."""

    rows: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def _outbox_done_before(cutoff: Any) -> ColumnElement[bool]:
    # A message another one still needs stays: the alert of an episode that is not over
    # (its updates, reminders and recovery are posted in its thread and edit it), and the
    # parent of any message still waiting to be sent.
    open_alerts = select(AlertMessage.outbox_key).where(AlertMessage.resolved_at.is_(None))
    waiting = aliased(OutboxMessage)
    waiting_threads = select(waiting.thread_of).where(
        waiting.status == "pending", waiting.thread_of.is_not(None)
    )
    return and_(
        OutboxMessage.created_at < cutoff,
        OutboxMessage.status != "pending",
        OutboxMessage.dedupe_key.not_in(open_alerts),
        OutboxMessage.dedupe_key.not_in(waiting_threads),
    )


async def prune(
    sessions: async_sessionmaker[AsyncSession], *, keep: timedelta, batch: int = BATCH
) -> Pruned:
    """Delete what is older than `keep`, `batch` rows per transaction."""
    cutoff = utcnow() - keep
    engine = sessions.kw.get("bind")
    dialect = engine.dialect.name if engine is not None else "sqlite"
    # Each with the indexed column it is cut off by: batches are taken in that index's
    # order, so none sorts every old row to find the first thousand.
    targets: list[tuple[Any, ColumnElement[bool], Any]] = [
        (WebhookEvent, WebhookEvent.processed_at < cutoff, WebhookEvent.processed_at),
        (OutboxMessage, _outbox_done_before(cutoff), OutboxMessage.created_at),
        (AlertMessage, AlertMessage.resolved_at < cutoff, AlertMessage.resolved_at),
        (ScheduledCheck, ScheduledCheck.due_at < cutoff, ScheduledCheck.due_at),
        # A handful a day: no index needed to find the old ones.
        (DeviceLogin, DeviceLogin.finished_at < cutoff, DeviceLogin.finished_at),
        # Past the 10 minutes they are kept, by the database's clock (they are compared
        # across replicas): an hour of Slack requests between passes.
        (
            SeenSlackRequest,
            SeenSlackRequest.expires_at < database_now(dialect),
            SeenSlackRequest.expires_at,
        ),
    ]
    pruned = Pruned()
    for model, condition, order in targets:
        table: Table = model.__table__
        pruned.rows[table.name] = 0
        while True:
            deleted = await _delete_batch(sessions, model, condition, order, batch)
            pruned.rows[table.name] += deleted
            if deleted < batch:
                break
            await asyncio.sleep(0)  # let the server's other work run between batches
    return pruned


async def _delete_batch(
    sessions: async_sessionmaker[AsyncSession],
    model: Any,
    condition: ColumnElement[bool],
    order: Any,
    batch: int,
) -> int:
    key = model.__mapper__.primary_key[0]
    async with transaction(sessions) as session:
        ids = select(key).where(condition).order_by(order, key).limit(batch)
        if session.bind is not None and session.bind.dialect.name == "postgresql":
            ids = ids.with_for_update(skip_locked=True)
        result = await session.execute(
            delete(model)
            .where(key.in_(ids.scalar_subquery()))
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]
