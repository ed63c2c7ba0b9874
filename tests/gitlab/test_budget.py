"""The service token's request budget, shared through the database by every replica, and
the pacing by GitLab's own `RateLimit-*` headers."""

import asyncio
import time

import pytest
from sqlalchemy import select

from bot.gitlab.budget import RateLimitPacer
from bot.gitlab.http import RateLimitHeaders
from bot.store.db import create_engine
from bot.store.migrate import upgrade_database
from bot.store.models import RequestBudgetRow, RequestGrant
from bot.store.request_budget import SharedRequestBudget

TOKEN = "glpat-service-token-000001"


def most_in_any_window(stamps: list[float], window: float) -> int:
    stamps = sorted(stamps)
    return max(
        (sum(1 for t in stamps if start <= t < start + window) for start in stamps), default=0
    )


async def test_two_replicas_never_exceed_one_budget_in_any_window(database_url):
    upgrade_database(database_url)
    engines = [create_engine(database_url), create_engine(database_url)]
    # Two replicas: each its own engine and budget object, one token, one budget.
    budgets = [SharedRequestBudget(engine, TOKEN, 5, window=1.0) for engine in engines]
    sent: list[float] = []

    async def request(budget: SharedRequestBudget) -> None:
        await budget.acquire()
        sent.append(time.monotonic())
        budget.answered(None)

    try:
        await asyncio.gather(*(request(budgets[n % 2]) for n in range(12)))
    finally:
        for engine in engines:
            await engine.dispose()
    assert len(sent) == 12
    assert most_in_any_window(sent, 1.0) <= 5
    # 12 requests at 5 per window need two refills: the budget was spent, not ignored.
    assert sent[-1] - sent[0] >= 2.0


async def test_within_budget_nothing_waits_and_the_database_counts_it(database_url):
    upgrade_database(database_url)
    engine = create_engine(database_url)
    budget = SharedRequestBudget(engine, TOKEN, 100)
    try:
        for _ in range(40):
            await budget.acquire()
            budget.answered(None)
        # Every request counted; a replica claims up to 5 % of the budget ahead.
        assert 40 <= await budget.used_in_window() <= 40 + 5
        async with engine.connect() as connection:
            keys = set((await connection.scalars(select(RequestBudgetRow.token_key))).all())
            keys |= set((await connection.scalars(select(RequestGrant.token_key))).all())
    finally:
        await engine.dispose()
    assert len(keys) == 1 and TOKEN not in next(iter(keys))


def test_a_budget_of_zero_is_refused(sqlite_url):
    with pytest.raises(ValueError):
        SharedRequestBudget(create_engine(sqlite_url), TOKEN, 0)


async def test_the_pacer_waits_for_the_reset_when_gitlab_has_little_left():
    now = [1000.0]
    pacer = RateLimitPacer(clock=lambda: now[0])
    await pacer.before_request()  # nothing known: the first request goes at once
    pacer.after_answer(RateLimitHeaders(remaining=3, reset_at=1010.0, limit=20))
    await pacer.before_request()  # 3 left, a reserve of 2: one more may go
    waiting = asyncio.create_task(pacer.before_request())
    await asyncio.sleep(0.05)
    assert not waiting.done()  # it waits for the window to reset
    now[0] = 1011.0
    pacer.after_answer(RateLimitHeaders(remaining=2, reset_at=1010.0, limit=20))
    await asyncio.wait_for(waiting, 1)


async def test_a_gitlab_without_rate_limit_headers_is_not_paced():
    pacer = RateLimitPacer()
    await pacer.before_request()
    pacer.after_answer(None)
    for _ in range(50):  # all in flight at once: nothing to wait for
        await asyncio.wait_for(pacer.before_request(), 0.5)


def test_gitlabs_reset_is_read_against_its_own_date_header():
    from email.utils import formatdate

    from multidict import CIMultiDict, CIMultiDictProxy

    from bot.gitlab.http import Answer

    gitlab_now = time.time() - 3600  # GitLab's clock an hour behind ours
    headers = {
        "RateLimit-Limit": "2000",
        "RateLimit-Remaining": "7",
        "RateLimit-Reset": str(int(gitlab_now) + 30),
        "Date": formatdate(gitlab_now, usegmt=True),
    }
    answer = Answer(200, CIMultiDictProxy(CIMultiDict(headers)), b"[]")
    rate_limit = answer.rate_limit
    assert rate_limit is not None
    assert (rate_limit.remaining, rate_limit.limit) == (7, 2000)
    assert 29 <= rate_limit.reset_at - time.time() <= 31
    no_headers = Answer(200, CIMultiDictProxy(CIMultiDict()), b"[]")
    assert no_headers.rate_limit is None
