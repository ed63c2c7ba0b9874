"""A request's work runs once per signature; all of one request's work runs."""

from bot import metrics
from bot.slack.replays import FirstUse, unless_replayed
from bot.store.seen_requests import SeenSlackRequests


async def test_every_piece_of_one_requests_work_runs_and_a_replays_none(engine):
    seen = SeenSlackRequests(engine, 300)
    ran: list[str] = []

    async def work(name: str) -> None:
        ran.append(name)

    request = FirstUse(seen, "v0=abc")
    await unless_replayed(request, work("reply"))
    await unless_replayed(request, work("follow-up"))  # the same request: not a replay
    await unless_replayed(FirstUse(seen, "v0=abc"), work("replayed"))
    await unless_replayed(FirstUse(seen, "v0=def"), work("another request"))
    assert ran == ["reply", "follow-up", "another request"]


async def test_a_write_that_fails_once_is_tried_again(engine):
    seen = SeenSlackRequests(engine, 300)
    insert, failures = seen._insert, []

    async def flaky(digests: list[str]) -> set[str]:
        if not failures:
            failures.append(digests)
            raise OSError("failover")
        return await insert(digests)

    seen._insert = flaky  # type: ignore[method-assign]
    assert await FirstUse(seen, "v0=one").admitted()
    assert not await FirstUse(seen, "v0=one").admitted()  # recorded by the retry
    assert failures


async def test_without_the_database_the_work_runs_and_it_is_counted(engine):
    """The door already refused this process's replays; the work meets the same outage
    and tells the person, which a silent refusal would not. The metric shows it."""
    seen = SeenSlackRequests(engine, 300)
    ran: list[str] = []

    async def work() -> None:
        ran.append("ran")

    async def broken(digests: list[str]) -> set[str]:
        raise OSError("database unreachable")

    seen._insert = broken  # type: ignore[method-assign]
    before = metrics.SLACK_REPLAY_CHECKS_FAILED._value.get()
    await unless_replayed(FirstUse(seen, "v0=xyz"), work())
    assert ran == ["ran"]
    assert metrics.SLACK_REPLAY_CHECKS_FAILED._value.get() == before + 1
