"""Slack request signatures admitted once, shared by replicas through the database."""

import asyncio
from datetime import timedelta

from sqlalchemy import func, select

from bot.domain.retention import prune
from bot.store.db import create_engine, session_factory
from bot.store.migrate import upgrade_database
from bot.store.models import SeenSlackRequest
from bot.store.seen_requests import SeenSlackRequests


async def test_a_signature_one_replica_admitted_is_refused_by_another(database_url):
    upgrade_database(database_url)
    engines = [create_engine(database_url), create_engine(database_url)]
    first, second = (SeenSlackRequests(engine, 300) for engine in engines)
    try:
        assert await first.first_time("v0=aaaa")
        assert not await second.first_time("v0=aaaa")  # the replay, at the other replica
        assert not await first.first_time("v0=aaaa")
        assert await second.first_time("v0=bbbb")  # a new request is welcome anywhere
        # Many at once, half of them copies: each signature gets in exactly once.
        signatures = [f"v0={n:04d}" for n in range(20)]
        outcomes = await asyncio.gather(
            *(seen.first_time(s) for s in signatures for seen in (first, second))
        )
        assert sum(outcomes) == len(signatures)
    finally:
        for engine in engines:
            await engine.dispose()


async def test_a_burst_larger_than_one_statement_is_recorded_whole(engine):
    seen = SeenSlackRequests(engine, 300)
    signatures = [f"v0={n:05d}" for n in range(1200)]  # more than BATCH, at once
    assert all(await asyncio.gather(*(seen.first_time(s) for s in signatures)))
    assert not any(await asyncio.gather(*(seen.first_time(s) for s in signatures)))


async def test_signatures_past_their_time_are_pruned_and_the_rest_kept(database_url):
    upgrade_database(database_url)
    engine = create_engine(database_url)
    try:
        await SeenSlackRequests(engine, 0.05).first_time("v0=old")
        await SeenSlackRequests(engine, 300).first_time("v0=recent")
        await asyncio.sleep(0.3)
        sessions = session_factory(engine)
        pruned = await prune(sessions, keep=timedelta(days=7))
        assert pruned.rows["seen_slack_requests"] == 1
        async with sessions() as session:
            left = await session.scalar(select(func.count()).select_from(SeenSlackRequest))
        assert left == 1
    finally:
        await engine.dispose()
