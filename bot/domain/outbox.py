"""The outbox: Slack messages to deliver at least once and show once.

Producers add rows inside their own transaction, keyed by a `dedupe_key` that names what
the message is (this alert, for this mirror, episode and channel), so a repeated trigger
adds nothing. Senders claim due rows atomically (`FOR UPDATE SKIP LOCKED` on PostgreSQL,
then a conditional claim naming the sender), so two replicas never send the same row at
the same time; the claim lasts longer than a send can, and only its sender can finish it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.store.db import transaction
from bot.store.models import OutboxMessage, utcnow

# How long a sender waits for Slack's answer to one message. A claim outlasts that several
# times over (Slack's client may retry a dropped connection once), so no other replica
# takes a message back while its post may still be under way.
SEND_TIMEOUT = 30  # seconds
CLAIM_FOR = timedelta(seconds=3 * SEND_TIMEOUT)


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
    claimed_by: str


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
    claimer: str,
    *,
    limit: int = 1,
) -> list[PendingMessage]:
    """Claim up to `limit` due messages for `claimer` (this replica), oldest first, for
    CLAIM_FOR. Claim only what will be sent within that: one at a time by default."""
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
                .values(claimed_until=now + CLAIM_FOR, claimed_by=claimer)
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
                        claimer,
                    )
                )
        return claimed


async def parent_ts(sessions: async_sessionmaker[AsyncSession], key: str) -> tuple[str, str | None]:
    """(status, ts) of the message `key` names; ("missing", None) if there is none."""
    async with sessions() as session:
        row = await session.scalar(select(OutboxMessage).where(OutboxMessage.dedupe_key == key))
        return (row.status, row.message_ts) if row else ("missing", None)


def _claimed(message: PendingMessage) -> ColumnElement[bool]:
    """The row is still this sender's claim: only the claimer finishes it."""
    return and_(
        OutboxMessage.id == message.id,
        OutboxMessage.status == "pending",
        OutboxMessage.claimed_by == message.claimed_by,
    )


async def mark_sent(
    sessions: async_sessionmaker[AsyncSession], message: PendingMessage, ts: str | None
) -> bool:
    """Record the delivery; False if the claim was no longer this sender's."""
    async with transaction(sessions) as session:
        result = await session.execute(
            update(OutboxMessage)
            .where(_claimed(message))
            .values(
                status="sent", message_ts=ts, sent_at=utcnow(), claimed_until=None, claimed_by=None
            )
        )
    return bool(result.rowcount)  # type: ignore[attr-defined]


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
    `retry.max_attempts` counted attempts. Nothing happens if the claim is no longer this
    sender's."""
    attempts = message.attempts + (1 if count else 0)
    wait = after or retry.backoff(attempts)
    status = "failed" if attempts >= retry.max_attempts else "pending"
    async with transaction(sessions) as session:
        await session.execute(
            update(OutboxMessage)
            .where(_claimed(message))
            .values(
                status=status,
                attempts=attempts,
                last_error=error[:500],
                next_attempt_at=utcnow() + wait,
                claimed_until=None,
                claimed_by=None,
            )
        )


async def give_up(session: AsyncSession, message: PendingMessage, *, error: str) -> bool:
    """Stop trying a message Slack refused for good (retrying cannot make it arrive);
    False if the claim was no longer this sender's."""
    result = await session.execute(
        update(OutboxMessage)
        .where(_claimed(message))
        .values(status="failed", last_error=error[:500], claimed_until=None, claimed_by=None)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


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
