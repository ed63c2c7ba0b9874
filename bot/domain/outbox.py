"""The outbox: Slack messages to deliver at least once and show once.

Producers add rows inside their own transaction, keyed by a `dedupe_key` that names what
the message is (this alert, for this mirror, episode and channel), so a repeated trigger
adds nothing. Senders claim due rows atomically (`FOR UPDATE SKIP LOCKED` on PostgreSQL,
then a conditional claim), so two replicas never send the same row at the same time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.store.db import transaction
from bot.store.models import OutboxMessage, utcnow

CLAIM_FOR = timedelta(seconds=60)


@dataclass(frozen=True)
class OutboxRetry:
    """How often a message is tried before it is given up (status failed), and how long
    it waits between tries: `first_backoff` doubled per attempt, at most `max_backoff`."""

    max_attempts: int = 30
    first_backoff: timedelta = timedelta(seconds=2)
    max_backoff: timedelta = timedelta(minutes=30)

    def backoff(self, attempts: int) -> timedelta:
        doubled: timedelta = self.first_backoff * 2 ** min(max(attempts - 1, 0), 12)
        return min(self.max_backoff, doubled)


DEFAULT_RETRY = OutboxRetry()


class MessageKind(StrEnum):
    ALERT = "alert"  # a new message in the channel
    ALERT_UPDATE = "alert_update"  # edit the alert message (thread_of) in place
    ALERT_REMINDER = "alert_reminder"  # a reply in the alert's thread
    ALERT_RECOVERY = "alert_recovery"  # a reply in the alert's thread
    NOTICE = "notice"  # a message of its own (payload["notice"] names which), in a channel or DM


@dataclass(frozen=True)
class PendingMessage:
    id: int
    dedupe_key: str
    kind: MessageKind
    channel_id: str
    payload: dict[str, Any]
    thread_of: str | None
    attempts: int


async def enqueue(
    session: AsyncSession,
    *,
    key: str,
    kind: MessageKind,
    channel_id: str,
    payload: dict[str, Any],
    thread_of: str | None = None,
) -> None:
    """Add a message unless one with this key exists (then this is a repeat: ignore it)."""
    values = {
        "dedupe_key": key,
        "method": kind.value,
        "channel_id": channel_id,
        "payload": payload,
        "thread_of": thread_of,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": utcnow(),
        "created_at": utcnow(),
    }
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    insert = postgres_insert if dialect == "postgresql" else sqlite_insert
    statement = (
        insert(OutboxMessage).values(**values).on_conflict_do_nothing(index_elements=["dedupe_key"])
    )
    await session.execute(statement)


async def claim_due(
    sessions: async_sessionmaker[AsyncSession],
    *,
    limit: int = 20,
) -> list[PendingMessage]:
    """Claim up to `limit` due messages for this sender, oldest first."""
    now = utcnow()
    async with transaction(sessions) as session:
        due = (
            select(OutboxMessage.id)
            .where(
                OutboxMessage.status == "pending",
                OutboxMessage.next_attempt_at <= now,
                or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now),
            )
            .order_by(OutboxMessage.id)
            .limit(limit)
        )
        if session.bind is not None and session.bind.dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)
        ids = list((await session.scalars(due)).all())
        claimed = []
        for message_id in ids:
            result = await session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == message_id,
                    OutboxMessage.status == "pending",
                    or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now),
                )
                .values(claimed_until=now + CLAIM_FOR)
            )
            if result.rowcount:  # type: ignore[attr-defined]
                row = await session.get(OutboxMessage, message_id)
                assert row is not None
                claimed.append(
                    PendingMessage(
                        row.id,
                        row.dedupe_key,
                        MessageKind(row.method),
                        row.channel_id,
                        dict(row.payload),
                        row.thread_of,
                        row.attempts,
                    )
                )
        return claimed


async def parent_ts(sessions: async_sessionmaker[AsyncSession], key: str) -> tuple[str, str | None]:
    """(status, ts) of the message `key` names; ("missing", None) if there is none."""
    async with sessions() as session:
        row = await session.scalar(select(OutboxMessage).where(OutboxMessage.dedupe_key == key))
        return (row.status, row.message_ts) if row else ("missing", None)


async def mark_sent(
    sessions: async_sessionmaker[AsyncSession], message_id: int, ts: str | None
) -> None:
    async with transaction(sessions) as session:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id)
            .values(status="sent", message_ts=ts, sent_at=utcnow(), claimed_until=None)
        )


async def retry_later(
    sessions: async_sessionmaker[AsyncSession],
    message: PendingMessage,
    *,
    error: str,
    after: timedelta | None = None,
    count: bool = True,
    retry: OutboxRetry = DEFAULT_RETRY,
) -> None:
    """Release the claim and try again later; give up (status failed) after
    `retry.max_attempts` counted attempts."""
    attempts = message.attempts + (1 if count else 0)
    wait = after or retry.backoff(attempts)
    status = "failed" if attempts >= retry.max_attempts else "pending"
    async with transaction(sessions) as session:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message.id)
            .values(
                status=status,
                attempts=attempts,
                last_error=error[:500],
                next_attempt_at=utcnow() + wait,
                claimed_until=None,
            )
        )


async def give_up(session: AsyncSession, message_id: int, *, error: str) -> None:
    """Stop trying a message Slack refused for good (retrying cannot make it arrive)."""
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id)
        .values(status="failed", last_error=error[:500], claimed_until=None)
    )


async def depth(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.status == "pending")
            )
            or 0
        )
