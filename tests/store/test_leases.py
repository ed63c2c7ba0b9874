"""The monitor's lease: one holder at a time, renewed by it, taken over once it expires."""

import asyncio
import time

from bot.store.db import create_engine
from bot.store.leases import MONITOR_LEASE, Lease
from bot.store.migrate import upgrade_database


async def wait_until_claimed(lease: Lease) -> float:
    for _ in range(200):  # 10 s
        if await lease.claim():
            return time.monotonic()
        await asyncio.sleep(0.05)
    raise AssertionError("the lease was never taken over")


async def test_one_replica_holds_the_lease_and_another_takes_it_once_it_expires(database_url):
    upgrade_database(database_url)
    engines = [create_engine(database_url), create_engine(database_url)]
    first, second = (
        Lease(engine, MONITOR_LEASE, holder, duration=1.0)
        for engine, holder in zip(engines, ("replica-a", "replica-b"), strict=True)
    )
    try:
        assert await first.claim() and first.held
        assert not await second.claim() and not second.held
        assert await first.claim()  # the holder renews
        renewed = time.monotonic()
        assert not await second.claim()
        # The first stops renewing (it died): the second takes over once the lease ran out.
        taken = await wait_until_claimed(second)
        assert taken - renewed >= 0.9
        assert second.held and not first.held  # by the first's own clock too
        assert not await first.claim()  # and it cannot take it back
    finally:
        for engine in engines:
            await engine.dispose()


async def test_a_released_lease_is_taken_at_once(database_url):
    upgrade_database(database_url)
    engines = [create_engine(database_url), create_engine(database_url)]
    first = Lease(engines[0], MONITOR_LEASE, "replica-a", duration=3600)
    second = Lease(engines[1], MONITOR_LEASE, "replica-b", duration=3600)
    try:
        assert await first.claim()
        assert not await second.claim()
        await first.release()
        assert not first.held
        assert await second.claim()
    finally:
        for engine in engines:
            await engine.dispose()
