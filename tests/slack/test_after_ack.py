"""Work handed over after an ack: kept until done, logged if it fails, drained on stop."""

import asyncio
import logging

from bot.slack.after_ack import AfterAck


async def test_work_runs_after_the_listener_returns_and_failures_are_logged(caplog):
    after_ack, done = AfterAck(), []

    async def reply() -> None:
        await asyncio.sleep(0.01)
        done.append("reply")

    async def broken() -> None:
        raise RuntimeError("boom")

    after_ack.start(reply())
    after_ack.start(broken())
    assert done == []  # nothing ran inside `start`
    with caplog.at_level(logging.ERROR):
        await after_ack.drain(grace=1)
    assert done == ["reply"]
    assert "work after a Slack ack failed" in caplog.text


async def test_drain_waits_for_quick_replies_and_cancels_stuck_ones():
    after_ack, finished, cancelled = AfterAck(), [], []

    async def quick() -> None:
        await asyncio.sleep(0.05)
        finished.append("quick")

    async def stuck() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.append("stuck")
            raise

    after_ack.start(quick())
    after_ack.start(stuck())
    await asyncio.wait_for(after_ack.drain(grace=0.5), timeout=5)
    assert finished == ["quick"]
    assert cancelled == ["stuck"]
