"""Group commit: the writer answers every waiting request, even when it is stopped, and
replaces a connection the database dropped."""

import asyncio

import psycopg
import pytest

from bot.domain.inbox import InboxWriter
from bot.store.db import create_engine
from bot.store.migrate import upgrade_database

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
