"""GitLab webhook deliveries: stored durably before GitLab gets its 200, processed once.

`Idempotency-Key` is stable across GitLab's retries of one delivery, and
`X-Gitlab-Event-UUID` is shared by every hook one push fires (project, group, system
hooks): both are unique in the inbox, so either kind of repeat is dropped on arrival.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domain.monitor import schedule_checks
from bot.store.db import transaction
from bot.store.models import Subscription, WebhookEvent, utcnow

MAX_BODY_BYTES = 5 * 1024 * 1024
# The events that mean "a project's repository changed", so its push mirrors will update.
ACCEPTED = {
    "Push Hook": {"push"},
    "Tag Push Hook": {"tag_push"},
    "System Hook": {"push", "tag_push", "repository_update"},
}


class WebhookRejected(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def parse_event(headers: Mapping[str, str], body: bytes) -> tuple[str, str, dict[str, Any]]:
    """(event header, event name, payload) or `WebhookRejected` with a 4xx."""
    if len(body) > MAX_BODY_BYTES:
        raise WebhookRejected(413, "payload too large")
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookRejected(400, "the body is not JSON") from None
    if not isinstance(payload, dict):
        raise WebhookRejected(400, "the body is not a JSON object")
    header = headers.get("x-gitlab-event", "")
    name = str(payload.get("event_name") or payload.get("object_kind") or "")
    if header not in ACCEPTED or name not in ACCEPTED[header]:
        raise WebhookRejected(
            422,
            f"event {header or '?'} / {name or '?'} is not handled: "
            "enable only push events on this hook",
        )
    return header, name, payload


def project_id_of(payload: dict[str, Any]) -> int | None:
    value = payload.get("project_id") or (payload.get("project") or {}).get("id")
    return int(value) if isinstance(value, int | str) and str(value).isdigit() else None


async def store_event(
    sessions: async_sessionmaker[AsyncSession], headers: Mapping[str, str], body: bytes
) -> bool:
    """Store the delivery; False if it is a repeat. Raises `WebhookRejected` for bad input."""
    header, name, payload = parse_event(headers, body)
    event_uuid = headers.get("x-gitlab-event-uuid") or None
    delivery_key = (
        headers.get("idempotency-key")
        or headers.get("x-gitlab-webhook-uuid")
        or hashlib.sha256(body).hexdigest()
    )
    try:
        async with transaction(sessions) as session:
            session.add(
                WebhookEvent(
                    delivery_key=delivery_key[:255],
                    event_uuid=event_uuid[:64] if event_uuid else None,
                    event_kind=f"{header}/{name}"[:64],
                    project_id=project_id_of(payload),
                    payload=payload,
                )
            )
    except IntegrityError:
        return False
    return True


async def process_pending(
    sessions: async_sessionmaker[AsyncSession], *, check_delays: Iterable[float], limit: int = 100
) -> int:
    """Turn stored pushes to watched projects into scheduled checks; returns how many."""
    delays = list(check_delays)
    async with transaction(sessions) as session:
        query = (
            select(WebhookEvent)
            .where(WebhookEvent.processed_at.is_(None))
            .order_by(WebhookEvent.id)
            .limit(limit)
        )
        if session.bind is not None and session.bind.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        events = (await session.scalars(query)).all()
        watched = (
            set(
                (
                    await session.scalars(
                        select(Subscription.project_id).where(
                            Subscription.project_id.in_(
                                {e.project_id for e in events if e.project_id}
                            )
                        )
                    )
                ).all()
            )
            if events
            else set()
        )
        for project_id in {e.project_id for e in events if e.project_id in watched}:
            assert project_id is not None
            await schedule_checks(session, project_id, delays, "push")
        if events:
            await session.execute(
                update(WebhookEvent)
                .where(WebhookEvent.id.in_([e.id for e in events]))
                .values(processed_at=utcnow())
            )
        return len(events)


async def depth(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(WebhookEvent)
                .where(WebhookEvent.processed_at.is_(None))
            )
            or 0
        )
