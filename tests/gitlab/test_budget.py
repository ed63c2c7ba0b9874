import asyncio
import time

import pytest

from bot.gitlab.budget import RequestBudget


async def test_never_more_than_the_budget_in_any_window():
    budget = RequestBudget(5, window=0.5)
    sent: list[float] = []

    async def request() -> None:
        await budget.acquire()
        sent.append(time.monotonic())

    await asyncio.gather(*(request() for _ in range(12)))
    assert len(sent) == 12
    for start in sent:
        in_window = [t for t in sent if start <= t < start + 0.5 - 1e-3]
        assert len(in_window) <= 5
    assert sent[-1] - sent[0] >= 1.0  # 12 requests at 5 per half second need two refills


async def test_within_budget_nothing_waits():
    budget = RequestBudget(100)
    started = time.monotonic()
    for _ in range(100):
        await budget.acquire()
    assert time.monotonic() - started < 0.5
    assert budget.used_in_window() == 100


def test_a_budget_of_zero_is_refused():
    with pytest.raises(ValueError):
        RequestBudget(0)
