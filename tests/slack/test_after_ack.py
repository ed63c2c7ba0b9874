"""Work handed over after an ack: started once the acks are out, kept until done, logged
if it fails, drained on stop; sync follow-ups stopped on shutdown."""

import asyncio
import logging
import time

from bot.slack.after_ack import AfterAck
from bot.slack.delivery import in_background, stop_following


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
        await asyncio.sleep(0.01)
        finished.append("quick")

    async def stuck() -> None:
        try:
            await asyncio.Event().wait()  # never set: only a cancel ends it
        except asyncio.CancelledError:
            cancelled.append("stuck")
            raise

    after_ack.start(quick())
    after_ack.start(stuck())
    # A reply that needs 10 ms gets 2 s: 200 times that, room for a stalled machine. That
    # drain returns at all shows it cancelled `stuck`.
    await after_ack.drain(grace=2)
    assert finished == ["quick"]
    assert cancelled == ["stuck"]


async def hand_over_steadily(
    after_ack: AfterAck, seconds: float, every: float, times: list[float] | None = None
) -> None:
    """A stream of requests, each handing over work that does nothing; `times` gets the
    moment of each hand-over."""

    async def nothing() -> None:
        pass

    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        if times is not None:
            times.append(time.monotonic())
        after_ack.start(nothing())
        await asyncio.sleep(every)


async def test_work_waits_while_requests_keep_coming_then_starts():
    quiet = 0.1
    after_ack, started, started_at = AfterAck(quiet=quiet, longest_wait=30), asyncio.Event(), []
    handed_over = [time.monotonic()]

    async def reply() -> None:
        started_at.append(time.monotonic())
        started.set()

    after_ack.start(reply())
    await hand_over_steadily(after_ack, seconds=0.4, every=0.01, times=handed_over)
    await started.wait()
    await after_ack.drain(grace=1)
    [start] = started_at
    # Not a wall-clock bound: however the machine stalls, the reply may only start once
    # `quiet` has passed since a hand-over, so not before the stream's first quiet spell
    # (normally its end; earlier if the loop stalled longer than `quiet` mid-stream).
    gaps = zip(handed_over, [*handed_over[1:], float("inf")], strict=True)
    first_quiet_spell = next(at for at, following in gaps if following - at >= quiet)
    assert start >= first_quiet_spell + quiet


async def test_a_steady_stream_holds_work_back_no_longer_than_the_longest_wait():
    after_ack, started = AfterAck(quiet=30, longest_wait=0.1), asyncio.Event()

    async def reply() -> None:
        started.set()

    after_ack.start(reply())
    stream = asyncio.create_task(hand_over_steadily(after_ack, seconds=20, every=0.01))
    try:
        await started.wait()
        assert not stream.done()  # it started while the requests kept coming
    finally:
        stream.cancel()
    await after_ack.drain(grace=1)


async def test_drain_starts_work_that_still_waits():
    after_ack, done = AfterAck(quiet=60, longest_wait=60), []

    async def reply() -> None:
        done.append("reply")

    after_ack.start(reply())
    await asyncio.wait_for(after_ack.drain(grace=1), timeout=5)
    assert done == ["reply"]


async def test_shutdown_stops_sync_follow_ups():
    cancelled = []

    async def follow() -> None:
        try:
            await asyncio.sleep(600)  # a sync followed for minutes
        except asyncio.CancelledError:
            cancelled.append("follow")
            raise

    in_background(follow())
    await asyncio.sleep(0)
    await asyncio.wait_for(stop_following(), timeout=5)
    assert cancelled == ["follow"]
