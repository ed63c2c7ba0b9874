"""The daily digest: once a day, in a channel, what is failing, recovered, stale, disabled.

A channel's digest is one row (time, time zone, `always`). A pass looks at each row: once
the channel's local time is past the digest's time and today's digest is not out, it puts
one message in the outbox under the key `digest:<channel>:<local date>`, so however many
replicas and restarts make the same pass, the channel gets one digest that day. Nothing
is sent when all is well unless the channel asked for `always`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domain.causes import classify
from bot.domain.errors import DomainError
from bot.domain.outbox import MessageKind, enqueue
from bot.domain.subscriptions import MirrorObservation
from bot.store.db import transaction
from bot.store.models import AlertMessage, Digest, MirrorState, Subscription, utcnow

_TIME = re.compile(r"^(?P<h>[01]?\d|2[0-3]):(?P<m>[0-5]\d)$")
MAX_LISTED = 30  # per section; the digest says how many more


class BadDigestTime(DomainError):
    """A time or time zone the digest cannot use."""


@dataclass(frozen=True)
class DigestSchedule:
    channel_id: str
    at_time: str  # HH:MM
    timezone: str
    always: bool


def parse_schedule(at: str, timezone: str | None) -> tuple[str, str]:
    """HH:MM and an IANA zone name (default UTC), checked; `BadDigestTime` otherwise."""
    match = _TIME.match(at)
    if not match:
        raise BadDigestTime(f"`{at[:20]}` is not a time of day — use HH:MM, like 09:00")
    zone = timezone or "UTC"
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadDigestTime(
            f"`{zone[:60]}` is not a time zone — use a name like Europe/Berlin or UTC"
        ) from None
    return f"{int(match['h']):02d}:{match['m']}", zone


def _local(now: datetime, zone: str) -> datetime:
    return now.astimezone(ZoneInfo(zone))


def _time_of(at: str) -> time:
    hours, minutes = at.split(":")
    return time(int(hours), int(minutes))


async def set_digest(
    sessions: async_sessionmaker[AsyncSession],
    *,
    team_id: str,
    channel_id: str,
    user_id: str,
    at: str,
    timezone: str | None,
    always: bool,
) -> DigestSchedule:
    at, zone = parse_schedule(at, timezone)
    async with transaction(sessions) as session:
        row = await session.get(Digest, channel_id)
        if row is None:
            row = Digest(channel_id=channel_id, slack_team_id=team_id, created_by=user_id)
            session.add(row)
        row.at_time, row.timezone, row.always, row.created_by = at, zone, always, user_id
        # The first digest is the first time of day after this moment, not one right now.
        row.created_at = utcnow()
    return DigestSchedule(channel_id, at, zone, always)


async def stop_digest(sessions: async_sessionmaker[AsyncSession], channel_id: str) -> bool:
    async with transaction(sessions) as session:
        result = await session.execute(delete(Digest).where(Digest.channel_id == channel_id))
        return bool(result.rowcount)  # type: ignore[attr-defined]


async def digest_of(
    sessions: async_sessionmaker[AsyncSession], channel_id: str
) -> DigestSchedule | None:
    async with sessions() as session:
        row = await session.get(Digest, channel_id)
    return DigestSchedule(row.channel_id, row.at_time, row.timezone, row.always) if row else None


async def send_due_digests(
    sessions: async_sessionmaker[AsyncSession],
    *,
    stale_after: timedelta,
    now: datetime | None = None,
) -> int:
    """Queue every digest whose time has come today; returns how many were queued."""
    now = now or utcnow()
    async with sessions() as session:
        rows = (await session.scalars(select(Digest))).all()
    queued = 0
    for row in rows:
        local = _local(now, row.timezone)
        today = local.date()
        due_at = datetime.combine(today, _time_of(row.at_time), tzinfo=ZoneInfo(row.timezone))
        if local < due_at or due_at <= row.created_at or row.last_sent_on == today:
            continue
        async with transaction(sessions) as session:
            current = await session.get(Digest, row.channel_id, with_for_update=True)
            if current is None or current.last_sent_on == today:
                continue  # another replica has done it
            payload = await _digest_payload(session, current, today, now, stale_after)
            if payload["all_well"] and not current.always:
                current.last_sent_on = today
                continue
            await enqueue(
                session,
                key=f"digest:{current.channel_id}:{today.isoformat()}",
                kind=MessageKind.NOTICE,
                channel_id=current.channel_id,
                payload=payload,
            )
            current.last_sent_on = today
            queued += 1
    return queued


async def _digest_payload(
    session: AsyncSession, row: Digest, today: date, now: datetime, stale_after: timedelta
) -> dict[str, Any]:
    project_ids = list(
        (
            await session.scalars(
                select(Subscription.project_id).where(Subscription.channel_id == row.channel_id)
            )
        ).all()
    )
    states = (
        (
            await session.scalars(
                select(MirrorState).where(MirrorState.project_id.in_(project_ids))
            )
        ).all()
        if project_ids
        else []
    )
    seen = [MirrorObservation.of(state) for state in states]
    day_ago = now - timedelta(days=1)
    recovered_ids = set(
        (
            await session.scalars(
                select(AlertMessage.mirror_state_id).where(
                    AlertMessage.channel_id == row.channel_id,
                    AlertMessage.resolved_at.is_not(None),
                    AlertMessage.resolved_at > day_ago,
                )
            )
        ).all()
    )
    by_id = {state.id: MirrorObservation.of(state) for state in states}
    failing = sorted((o for o in seen if o.is_failing), key=lambda o: o.failing_since or now)
    recovered = [by_id[i] for i in sorted(recovered_ids) if i in by_id and not by_id[i].is_failing]
    stale = [
        o
        for o in seen
        if o.enabled
        and not o.is_failing
        and o.last_successful_update_at is not None
        and now - o.last_successful_update_at > stale_after
    ]
    disabled = [o for o in seen if not o.enabled]

    def entry(o: MirrorObservation) -> dict[str, Any]:
        cause = classify(o.last_error)
        return {
            "project_path": o.project_path,
            "mirror": "pull" if o.mirror_id is None else str(o.mirror_id),
            "host": o.host,
            "since": o.failing_since.isoformat() if o.failing_since else None,
            "last_success": (
                o.last_successful_update_at.isoformat() if o.last_successful_update_at else None
            ),
            "cause": cause.title if cause.key != "unknown" else None,
        }

    return {
        "notice": "digest",
        "date": today.isoformat(),
        "projects": len(set(project_ids)),
        "mirrors": len(seen),
        "stale_after_days": stale_after.days,
        # A disabled mirror is someone's choice: listed, but no reason for a message.
        "all_well": not (failing or stale or recovered),
        "failing": [entry(o) for o in failing[:MAX_LISTED]],
        "failing_count": len(failing),
        "recovered": [entry(o) for o in recovered[:MAX_LISTED]],
        "recovered_count": len(recovered),
        "stale": [entry(o) for o in stale[:MAX_LISTED]],
        "stale_count": len(stale),
        "disabled": [entry(o) for o in disabled[:MAX_LISTED]],
        "disabled_count": len(disabled),
    }
