"""How far this host's clock is from the database's, which replicas compare claims by."""

import logging
import time
from types import SimpleNamespace

from bot import metrics
from bot.store import clock
from bot.store.db import create_engine
from bot.workers import Workers


async def test_the_skew_is_near_zero_on_one_host_and_follows_a_host_clock_set_wrong(
    database_url, monkeypatch
):
    engine = create_engine(database_url)
    try:
        assert abs(await clock.clock_skew(engine)) < 1.0
        real = time.time
        monkeypatch.setattr(clock.time, "time", lambda: real() + 90)  # this host runs fast
        assert -91 < await clock.clock_skew(engine) < -89
    finally:
        await engine.dispose()


async def test_a_host_a_minute_off_is_told_in_the_log_and_the_metric(engine, monkeypatch, caplog):
    real = time.time
    monkeypatch.setattr(clock.time, "time", lambda: real() - 75)  # this host runs slow
    workers = SimpleNamespace(services=SimpleNamespace(engine=engine))
    with caplog.at_level(logging.WARNING, logger="bot.workers"):
        await Workers.watch_clock(workers)  # type: ignore[arg-type]
    assert 74 < metrics.CLOCK_SKEW._value.get() < 76
    assert "75" in caplog.text and "behind the database's" in caplog.text
