"""Group commit: what the writer says is stored is committed, it answers every waiting
request, even when it is stopped, and replaces a connection the database dropped."""

import asyncio

import psycopg
import pytest
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from bot.domain.inbox import InboxWriter, process_pending
from bot.store.db import create_engine, session_factory, sync_url
from bot.store.migrate import upgrade_database
from bot.store.models import ScheduledCheck, WebhookEvent
from tests.domain.rows import subscription

HEADERS = {"x-gitlab-event": "Push Hook", "idempotency-key": "k1", "x-gitlab-event-uuid": "u1"}
BODY = b'{"object_kind": "push", "project_id": 7}'


async def test_repeats_in_one_batch_and_across_batches_are_told_apart(engine):
    writer = InboxWriter(engine)
    first, same_batch = await asyncio.gather(
        writer.store(HEADERS, BODY), writer.store(HEADERS, BODY)
    )
    later = await writer.store(HEADERS, BODY)
    other_hook = await writer.store({**HEADERS, "idempotency-key": "k2"}, BODY)
    await writer.close()
    assert (first, same_batch, later, other_hook) == (True, False, False, False)


async def test_stopping_the_writer_answers_requests_it_was_holding(engine, monkeypatch):
    import bot.domain.inbox as inbox

    started = asyncio.Event()

    async def slow_insert(*args, **kwargs):
        started.set()
        await asyncio.sleep(60)

    monkeypatch.setattr(inbox, "insert_events", slow_insert)
    writer = InboxWriter(engine)
    waiting = asyncio.create_task(writer.store(HEADERS, BODY))
    await started.wait()
    await writer.close()
    with pytest.raises(RuntimeError, match="shutting down"):
        await asyncio.wait_for(waiting, 5)


@pytest.mark.postgres
async def test_a_connection_the_database_dropped_is_replaced_and_the_batch_written(postgres_url):
    upgrade_database(postgres_url)
    engine = create_engine(postgres_url)
    writer = InboxWriter(engine)
    try:
        assert await writer.store(HEADERS, BODY) is True
        # What a database restart does to the writer's idle connection.
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            dropped = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchall()
        assert dropped
        other = {**HEADERS, "idempotency-key": "k2", "x-gitlab-event-uuid": "u2"}
        assert await writer.store(other, BODY) is True
    finally:
        await writer.close()
        await engine.dispose()


async def test_an_event_is_committed_before_the_writer_says_stored(database_url):
    """The writer works in autocommit, without BEGIN and COMMIT: a stored event must be
    visible at once from another connection (another process, after a crash)."""
    upgrade_database(database_url)
    engine = create_engine(database_url)
    writer = InboxWriter(engine)
    try:
        for n in range(3):
            headers = {**HEADERS, "idempotency-key": f"k{n}", "x-gitlab-event-uuid": f"u{n}"}
            assert await writer.store(headers, BODY) is True
            other = create_sync_engine(sync_url(database_url))
            with other.connect() as connection:
                keys = connection.execute(text("SELECT delivery_key FROM webhook_inbox")).all()
            other.dispose()
            assert {key for (key,) in keys} == {f"k{i}" for i in range(n + 1)}
    finally:
        await writer.close()
        await engine.dispose()


async def test_the_writers_sqlite_connection_leaves_checkpoints_to_the_others(engine):
    """A checkpoint's fsync would hold up a whole batch of requests; the inbox worker's
    commits, on pooled connections, still checkpoint."""
    writer = InboxWriter(engine)
    try:
        await writer.store(HEADERS, BODY)
        assert writer._connection is not None
        own = await writer._connection.exec_driver_sql("PRAGMA wal_autocheckpoint")
        assert own.scalar() == 0
        async with engine.connect() as pooled:
            assert (await pooled.exec_driver_sql("PRAGMA wal_autocheckpoint")).scalar() == 1000
    finally:
        await writer.close()


async def test_two_processors_at_once_process_every_event_once(database_url):
    """Two replicas' inbox workers: on PostgreSQL each takes rows the other has not locked
    (SKIP LOCKED), on SQLite they take turns; either way no event is lost or done twice,
    and only pushes to watched projects schedule checks."""
    upgrade_database(database_url)
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    writer = InboxWriter(engine)
    try:
        async with sessions.begin() as session:
            session.add(subscription(7, "C1"))
        for n in range(300):
            body = b'{"object_kind": "push", "project_id": %d}' % (7 if n % 3 == 0 else 8)
            headers = {**HEADERS, "idempotency-key": f"k{n}", "x-gitlab-event-uuid": f"u{n}"}
            assert await writer.store(headers, body) is True

        async def drain() -> int:
            done = 0
            while count := await process_pending(sessions, check_delays=[0, 60], limit=40):
                done += count
            return done

        first, second = await asyncio.gather(drain(), drain())
        assert first + second == 300
        async with sessions() as session:
            left = await session.scalar(
                select(func.count()).where(WebhookEvent.processed_at.is_(None))
            )
            checks = (await session.execute(select(ScheduledCheck.project_id))).scalars().all()
        assert left == 0
        # Project 8 is not watched; project 7 has one pending check per delay, however
        # many passes saw its pushes.
        assert sorted(checks) == [7, 7]
    finally:
        await writer.close()
        await engine.dispose()


async def test_every_column_the_writer_stores_reads_back_through_the_model(database_url):
    """On PostgreSQL the writer's INSERT is hand-written; it must store what the model
    would, on both backends."""
    upgrade_database(database_url)
    engine = create_engine(database_url)
    writer = InboxWriter(engine)
    body = b'{"event_name": "repository_update", "project": {"id": 9}, "note": "caf\\u00e9"}'
    try:
        assert await writer.store({"x-gitlab-event": "System Hook"}, body) is True
        async with session_factory(engine)() as session:
            event = (await session.scalars(select(WebhookEvent))).one()
    finally:
        await writer.close()
        await engine.dispose()
    assert event.event_uuid is None and event.project_id == 9
    assert event.event_kind == "System Hook/repository_update"
    assert event.received_at.tzinfo is not None and event.attempts == 0
    assert event.process_after >= event.received_at and event.processed_at is None


async def test_a_failed_batch_is_logged_once_and_refused_to_each_request(
    engine, sqlite_url, caplog
):
    # The database refuses the insert: its table is gone.
    with create_sync_engine(sync_url(sqlite_url)).begin() as connection:
        connection.execute(text("DROP TABLE webhook_inbox"))
    writer = InboxWriter(engine)
    # Five requests arrive before the writer first runs, so they are one batch.
    requests = [
        writer.store({**HEADERS, "idempotency-key": f"k{n}", "x-gitlab-event-uuid": f"u{n}"}, BODY)
        for n in range(5)
    ]
    outcomes = await asyncio.gather(*requests, return_exceptions=True)
    await writer.close()
    assert all(isinstance(outcome, DBAPIError) for outcome in outcomes), outcomes
    failures = [r for r in caplog.records if "webhook events failed" in r.getMessage()]
    assert len(failures) == 1
