"""GitLab webhook deliveries: stored durably before GitLab gets its 200, processed once.

`Idempotency-Key` is stable across GitLab's retries of one delivery, and
`X-Gitlab-Event-UUID` is shared by every hook one push fires (project, group, system
hooks): both are unique in the inbox, so either kind of repeat is dropped on arrival.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, Table, func, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from bot.domain.monitor import schedule_checks
from bot.store.db import transaction
from bot.store.models import Subscription, WebhookEvent, utcnow

log = logging.getLogger(__name__)
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


def event_row(headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """The inbox row for a delivery, or `WebhookRejected` for bad input."""
    header, name, payload = parse_event(headers, body)
    event_uuid = headers.get("x-gitlab-event-uuid") or None
    delivery_key = (
        headers.get("idempotency-key")
        or headers.get("x-gitlab-webhook-uuid")
        or hashlib.sha256(body).hexdigest()
    )
    return {
        "delivery_key": delivery_key[:255],
        "event_uuid": event_uuid[:64] if event_uuid else None,
        "event_kind": f"{header}/{name}"[:64],
        # Only what the bot uses: a push payload carries commit messages and e-mail addresses.
        "project_id": project_id_of(payload),
        "received_at": utcnow(),
        "process_after": utcnow(),
        "attempts": 0,
    }


# PostgreSQL: one short statement whatever the batch's size, the rows in one JSON document.
# With the rows in a multi-row VALUES, psycopg parsed the statement's text again for every
# batch (it caches only short statements with few parameters), and with one array per
# column it built each array in Python: each a fifth of the event loop's time at 2,000
# events/s. One JSON text is one C-encoded string, and the statement is prepared once.
_POSTGRES_INSERT = """
INSERT INTO webhook_inbox (delivery_key, event_uuid, event_kind, project_id,
                           received_at, process_after, attempts)
SELECT delivery_key, event_uuid, event_kind, project_id, received_at, process_after, attempts
FROM json_to_recordset(%s::json) AS batch(
    delivery_key varchar, event_uuid varchar, event_kind varchar, project_id bigint,
    received_at timestamptz, process_after timestamptz, attempts integer)
ON CONFLICT DO NOTHING
RETURNING delivery_key
"""


async def insert_events(connection: AsyncConnection, rows: list[dict[str, Any]]) -> set[str]:
    """Insert in the connection's transaction; returns the delivery keys that were new (the
    others are repeats of an `Idempotency-Key` or `X-Gitlab-Event-UUID` already stored)."""
    if connection.dialect.name == "postgresql":
        document = json.dumps(rows, default=datetime.isoformat)
        result = await connection.exec_driver_sql(_POSTGRES_INSERT, (document,))
        return set(result.scalars().all())
    # One statement, many parameter sets: SQLAlchemy compiles it once and sends the batch
    # as multi-row INSERTs; a statement with the rows in it compiled every time.
    events = cast(Table, WebhookEvent.__table__)
    statement = sqlite_insert(events).on_conflict_do_nothing().returning(events.c.delivery_key)
    return set((await connection.execute(statement, rows)).scalars().all())


class InboxWriter:
    """Group commit: requests hand their events to one writer, which inserts what has
    gathered in one transaction and only then lets each request answer 200. Durability
    per event is unchanged; the cost of a commit is shared by the whole batch.

    Every round trip a batch makes waits its turn on a busy event loop, and every request
    of the batch waits for it, so a batch makes as few as it can:
    - one connection of its own, not one from the pool per batch (a ping and a reset);
    - in autocommit: the batch is one INSERT statement, atomic on its own, so BEGIN and
      COMMIT were two more round trips for nothing;
    - on SQLite, no checkpoint on this connection: the commit that crosses the WAL's
      size limit copies it into the database file and fsyncs it, 10–20 ms during which
      the whole batch waits. The inbox worker commits on another connection after every
      pass over what was written here, and its commits checkpoint instead."""

    def __init__(self, engine: AsyncEngine, batch: int = 500) -> None:
        self._engine = engine
        self._batch = batch
        self._queue: asyncio.Queue[tuple[dict[str, Any], asyncio.Future[bool]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._connection: AsyncConnection | None = None

    async def store(self, headers: Mapping[str, str], body: bytes) -> bool:
        """Store a delivery; False if it is a repeat. Raises `WebhookRejected`."""
        row = event_row(headers, body)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._write_forever())
        stored: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        await self._queue.put((row, stored))
        return await stored

    async def _write_forever(self) -> None:
        while True:
            pending = [await self._queue.get()]
            while len(pending) < self._batch and not self._queue.empty():
                pending.append(self._queue.get_nowait())
            # One event per delivery key in a batch: a repeat inside it is a repeat too.
            unique: dict[str, dict[str, Any]] = {}
            for row, _ in pending:
                unique.setdefault(row["delivery_key"], row)
            try:
                new = await self._insert(list(unique.values()))
            except asyncio.CancelledError:
                # Shutting down: answer the waiting requests (GitLab retries, and a repeat
                # of anything that did get stored is recognised) rather than leave them hanging.
                for _, stored in pending:
                    if not stored.done():
                        stored.set_exception(RuntimeError("the server is shutting down"))
                raise
            except Exception as exc:
                # Once per batch, not per request: the requests answer 503 and GitLab
                # sends again.
                log.warning("storing %d webhook events failed", len(pending), exc_info=True)
                for _, stored in pending:
                    if not stored.done():
                        stored.set_exception(exc)
                continue
            for row, stored in pending:
                if not stored.done():
                    fresh = row["delivery_key"] in new and unique[row["delivery_key"]] is row
                    stored.set_result(fresh)

    async def _insert(self, rows: list[dict[str, Any]]) -> set[str]:
        try:
            return await self._insert_once(rows)
        except DBAPIError as exc:
            # A connection lost while idle (a database restart) is worth one more try.
            if not exc.connection_invalidated:
                raise
            return await self._insert_once(rows)

    async def _insert_once(self, rows: list[dict[str, Any]]) -> set[str]:
        if self._connection is None:
            self._connection = await self._connect()
        try:
            return await insert_events(self._connection, rows)
        except BaseException:
            await self._drop_connection()
            raise

    async def _connect(self) -> AsyncConnection:
        connection = await self._engine.connect()
        try:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            if connection.dialect.name == "sqlite":
                await connection.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
            return connection
        except BaseException:
            await connection.close()
            raise

    async def _drop_connection(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            with contextlib.suppress(Exception):
                await asyncio.shield(connection.close())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._drop_connection()


async def store_event(
    sessions: async_sessionmaker[AsyncSession], headers: Mapping[str, str], body: bytes
) -> bool:
    """Store one delivery on its own (the CLI and tests); the server uses `InboxWriter`."""
    row = event_row(headers, body)
    async with transaction(sessions) as session:
        new = await insert_events(await session.connection(), [row])
    return row["delivery_key"] in new


async def process_pending(
    sessions: async_sessionmaker[AsyncSession], *, check_delays: Iterable[float], limit: int = 100
) -> int:
    """Turn stored pushes to watched projects into scheduled checks; returns how many.
    With no `check_delays` (no monitor to run the checks) the events are only marked.

    One UPDATE marks a batch processed and returns its projects: selecting the events and
    then updating them by a list of ids cost ~0.1 ms of event-loop time per event (the
    list was bound as one parameter per id), in one block that held up the intake."""
    delays = list(check_delays)
    async with transaction(sessions) as session:
        batch = pending_events().order_by(WebhookEvent.id).limit(limit)
        if session.bind is not None and session.bind.dialect.name == "postgresql":
            batch = batch.with_for_update(skip_locked=True)  # another replica's batch
        project_ids = (
            await session.scalars(
                update(WebhookEvent)
                .where(WebhookEvent.id.in_(batch.scalar_subquery()))
                # `attempts` counts the passes that processed the event: 1, never 2.
                .values(processed_at=utcnow(), attempts=WebhookEvent.attempts + 1)
                .returning(WebhookEvent.project_id)
                .execution_options(synchronize_session=False)  # no objects were loaded
            )
        ).all()
        pushed = {project_id for project_id in project_ids if project_id is not None}
        watched: set[int] = (
            set(
                await session.scalars(
                    select(Subscription.project_id).where(Subscription.project_id.in_(pushed))
                )
            )
            if pushed and delays
            else set()
        )
        for project_id in watched:
            await schedule_checks(session, project_id, delays, "push")
        return len(project_ids)


def pending_events() -> Select[int]:
    """The events not processed yet: what each pass and each /metrics scrape look for, so
    `ix_webhook_inbox_processed_at` must serve it (a scan of every kept event otherwise)."""
    return select(WebhookEvent.id).where(WebhookEvent.processed_at.is_(None))


async def depth(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int(
            await session.scalar(select(func.count()).select_from(pending_events().subquery())) or 0
        )
