"""The audit log: every request, approval, rejection, execution and failure — and every
change to who may do what or who hears about it: links, unlinks, subscriptions, mutes,
and the console acting as someone (who, what, channel, project, whom it concerns)."""

from __future__ import annotations

import getpass
import json
import os
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.gitlab.scrub import scrub_text
from bot.store.db import transaction
from bot.store.models import AuditEntry


class AuditEvent(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    EXECUTED = "executed"
    FAILED = "failed"


class Action(StrEnum):
    """What is audited besides the mirror operations (those are named by `Operation`)."""

    LINK = "link"
    UNLINK = "unlink"
    WATCH = "watch"
    UNWATCH = "unwatch"
    MUTE = "mute"
    UNMUTE = "unmute"
    ACT_AS = "act-as"  # the console switched the Slack user it acts as


def local_operator(via: str) -> str:
    """Who acts from this machine (`cli:alice`, `console:alice`): the CLI and the console
    answer to no Slack login, so the audit log names the local account."""
    try:
        return f"{via}:{getpass.getuser()}"
    except (KeyError, OSError):  # no name for this uid (a bare container)
        return f"{via}:uid {os.getuid()}"


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
    channel: str | None = None,
    subject: str | None = None,
) -> None:
    """Add an entry to the caller's transaction, so it commits with the change it records.
    Ids are plain (`U123`, `C456`), never Slack markup."""
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
            channel_id=channel,
            subject_id=subject,
        )
    )


async def append(
    sessions: async_sessionmaker[AsyncSession],
    *,
    actor: str,
    operation: str,
    subject: str | None = None,
    channel: str | None = None,
    result: str | None = None,
) -> None:
    """Record an action that changes nothing else in the database (its own transaction)."""
    async with transaction(sessions) as session:
        record(
            session,
            actor=actor,
            event=AuditEvent.EXECUTED,
            operation=operation,
            project=None,
            result=result,
            channel=channel,
            subject=subject,
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
            "channel": entry.channel_id,
            "subject": entry.subject_id,
        },
        ensure_ascii=False,
    )
