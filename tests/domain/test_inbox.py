"""Group commit: the writer answers every waiting request, even when it is stopped."""

import asyncio

import pytest

from bot.domain.inbox import InboxWriter

HEADERS = {"x-gitlab-event": "Push Hook", "idempotency-key": "k1", "x-gitlab-event-uuid": "u1"}
BODY = b'{"object_kind": "push", "project_id": 7}'


async def test_repeats_in_one_batch_and_across_batches_are_told_apart(sessions):
    writer = InboxWriter(sessions)
    first, same_batch = await asyncio.gather(
        writer.store(HEADERS, BODY), writer.store(HEADERS, BODY)
    )
    later = await writer.store(HEADERS, BODY)
    other_hook = await writer.store({**HEADERS, "idempotency-key": "k2"}, BODY)
    await writer.close()
    assert (first, same_batch, later, other_hook) == (True, False, False, False)


async def test_stopping_the_writer_answers_requests_it_was_holding(sessions, monkeypatch):
    import bot.domain.inbox as inbox

    started = asyncio.Event()

    async def slow_insert(*args, **kwargs):
        started.set()
        await asyncio.sleep(60)

    monkeypatch.setattr(inbox, "insert_events", slow_insert)
    writer = InboxWriter(sessions)
    waiting = asyncio.create_task(writer.store(HEADERS, BODY))
    await started.wait()
    await writer.close()
    with pytest.raises(RuntimeError, match="shutting down"):
        await asyncio.wait_for(waiting, 5)
