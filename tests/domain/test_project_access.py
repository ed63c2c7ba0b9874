"""Lost projects on their own: one notice per channel when it starts, at most one a day
while it lasts, one note when it ends; repeated and concurrent checks add nothing."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.domain.project_access import (
    Problem,
    Readable,
    Unreadable,
    paths_to_check,
    record_access,
)
from bot.store.db import create_engine, session_factory, transaction
from bot.store.migrate import upgrade_database
from bot.store.models import OutboxMessage, Subscription
from tests.domain.rows import subscription

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
LOST = Unreadable(1, "group/app", Problem.LOST, "the service user lacks the Maintainer role")


@pytest.fixture
async def watched(database_url):
    upgrade_database(database_url)
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    async with transaction(sessions) as session:
        for channel in ("CA", "CB"):
            session.add(subscription(1, channel))
    yield sessions
    await engine.dispose()


async def notices(sessions) -> list[str]:
    async with sessions() as session:
        keys = (await session.scalars(select(OutboxMessage.dedupe_key))).all()
    return sorted(keys)


async def test_a_lost_project_is_noticed_once_a_day_and_its_return_once(watched):
    await record_access(watched, [LOST], now=T0)
    assert await notices(watched) == ["lost:1:1:1:CA", "lost:1:1:1:CB"]
    for hours in (1, 12, 23):  # every scan of the day: nothing new
        await record_access(watched, [LOST], now=T0 + timedelta(hours=hours))
    assert len(await notices(watched)) == 2
    await record_access(watched, [LOST], now=T0 + timedelta(hours=24, minutes=1))
    assert len(await notices(watched)) == 4  # the daily reminder, in each channel
    await record_access(watched, [Readable(1, "group/app", True)], now=T0 + timedelta(days=2))
    await record_access(watched, [Readable(1, "group/app", True)], now=T0 + timedelta(days=3))
    assert [k for k in await notices(watched) if k.startswith("readable")] == [
        "readable:1:1:CA",
        "readable:1:1:CB",
    ]


async def test_a_channel_that_starts_watching_a_lost_project_hears_of_it(watched):
    await record_access(watched, [LOST], now=T0)
    async with transaction(watched) as session:
        session.add(subscription(1, "CNEW"))
    await record_access(watched, [LOST], now=T0 + timedelta(minutes=1))
    await record_access(watched, [LOST], now=T0 + timedelta(minutes=2))
    assert await notices(watched) == ["lost:1:1:1:CA", "lost:1:1:1:CB", "lost:1:1:1:CNEW"]


async def test_two_checkers_at_once_notice_once(watched):
    await asyncio.gather(*(record_access(watched, [LOST], now=T0) for _ in range(4)))
    assert await notices(watched) == ["lost:1:1:1:CA", "lost:1:1:1:CB"]


async def test_a_project_that_was_never_lost_says_nothing_when_readable(watched):
    await record_access(watched, [Readable(1, "group/app", True)], now=T0)
    bad = Unreadable(1, "group/app", Problem.BAD_ANSWER, "not JSON")
    await record_access(watched, [bad], now=T0)
    await record_access(watched, [Readable(1, "group/app", True)], now=T0)
    assert await notices(watched) == []


async def test_a_path_read_from_gitlab_renames_the_subscriptions(watched):
    await record_access(watched, [Readable(1, "platform/app", path_checked=True)], now=T0)
    async with watched() as session:
        paths = set((await session.scalars(select(Subscription.project_path))).all())
    assert paths == {"platform/app"}


async def test_paths_read_together_come_due_again_spread_over_half_a_day(sessions):
    """5,000 paths read in one scan are not all read again in one scan a day later."""
    read_at = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
    ids = list(range(1, 5001))
    await record_access(
        sessions, [Readable(n, f"g/p{n}", path_checked=True) for n in ids], now=read_at
    )
    due_by_hour = [
        len(await paths_to_check(sessions, ids, now=read_at + timedelta(hours=h, minutes=1)))
        for h in (0, 11, 13, 18, 24)
    ]
    assert due_by_hour[0] == 0 and due_by_hour[1] == 0  # none within half a day
    assert 0 < due_by_hour[2] < due_by_hour[3] < 5000  # then a share at a time
    assert due_by_hour[4] == 5000  # all within a day


async def test_a_path_gitlab_gave_at_watch_time_is_not_read_again_until_its_period_ends(watched):
    """The path a subscription was made with came from GitLab then: the first checks do
    not read it again (at 5,000 projects, a third more requests in the first scan)."""
    now = datetime.now(UTC)
    assert await paths_to_check(watched, [1], now=now) == set()
    await record_access(watched, [Readable(1, "group/app", path_checked=False)], now=now)
    assert await paths_to_check(watched, [1], now=now) == set()
    assert await paths_to_check(watched, [1], now=now + timedelta(days=1, minutes=1)) == {1}
    assert await paths_to_check(watched, [2], now=now) == {2}  # watched nowhere: read it
