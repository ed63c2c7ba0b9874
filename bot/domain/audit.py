"""The audit log: every request, approval, rejection, execution and failure."""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.gitlab.scrub import scrub_text
from bot.store.models import AuditEntry


class AuditEvent(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    EXECUTED = "executed"
    FAILED = "failed"


def record(
    session: AsyncSession,
    *,
    actor: str,
    event: AuditEvent,
    operation: str,
    project: str | None,
    mirror_id: int | None = None,
    result: str | None = None,
    approver: str | None = None,
    request_id: str | None = None,
) -> None:
    """Add an entry to the caller's transaction, so it commits with the change it records."""
    session.add(
        AuditEntry(
            actor_id=actor,
            event=event.value,
            operation=operation,
            project=project,
            mirror_id=mirror_id,
            result=scrub_text(result),
            approver_id=approver,
            request_id=request_id,
        )
    )


async def list_entries(
    sessions: async_sessionmaker[AsyncSession],
    *,
    project: str | None = None,
    since: datetime | None = None,
    limit: int | None = None,
) -> list[AuditEntry]:
    query = select(AuditEntry).order_by(AuditEntry.at, AuditEntry.id)
    if project:
        query = query.where(AuditEntry.project == project)
    if since:
        query = query.where(AuditEntry.at >= since)
    if limit:
        query = query.limit(limit)
    async with sessions() as session:
        return list((await session.scalars(query)).all())


def as_json_line(entry: AuditEntry) -> str:
    return json.dumps(
        {
            "at": entry.at.isoformat(),
            "actor": entry.actor_id,
            "event": entry.event,
            "operation": entry.operation,
            "project": entry.project,
            "mirror_id": entry.mirror_id,
            "result": entry.result,
            "approver": entry.approver_id,
            "request_id": entry.request_id,
        },
        ensure_ascii=False,
    )
