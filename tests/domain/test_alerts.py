"""The alert state machine on its own: which observations produce which messages."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.domain.alerts import Snapshot, apply_check
from bot.domain.outbox import claim_due
from bot.store.db import transaction
from bot.store.models import Mute, OutboxMessage, Subscription
from tests.domain.rows import subscription

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(hours=24)
KEY = "push:7"


def snap(
    status: str,
    *,
    success: datetime | None = T0 - DAY,
    enabled: bool = True,
    error: str | None = "fatal: Authentication failed",
    key: str = KEY,
) -> Snapshot:
    # GitLab keeps last_error while a retry runs and clears it on success.
    return Snapshot(
        key,
        "https://*****@h.example/x.git",
        enabled,
        status,
        None if status == "finished" else error,
        T0,
        success,
    )


@pytest.fixture
async def watched(sessions):
    async with transaction(sessions) as session:
        for channel in ("CA", "CB"):
            session.add(subscription(1, channel))
    return sessions


async def check(
    sessions, *snaps: Snapshot, at: datetime = T0, remind_after: timedelta = DAY
) -> None:
    await apply_check(
        sessions,
        project_id=1,
        project_path="group/app",
        seen=list(snaps),
        remind_after=remind_after,
        now=at,
    )


async def messages(sessions) -> list[tuple[str, str]]:
    async with sessions() as session:
        rows = (await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all()
    return [(row.method, row.channel_id) for row in rows]


async def test_ok_to_failing_alerts_each_channel_once(watched):
    await check(watched, snap("finished"))
    await check(watched, snap("failed"))
    await check(watched, snap("failed"))
    await check(watched, snap("failed"), at=T0 + timedelta(minutes=5))
    assert await messages(watched) == [("alert", "CA"), ("alert", "CB")]


async def test_to_retry_is_not_a_failure(watched):
    await check(watched, snap("to_retry"))
    await check(watched, snap("started"))
    assert await messages(watched) == []


async def test_recovery_replies_in_the_thread_and_resolves_the_alert(watched):
    await check(watched, snap("failed"))
    await check(watched, snap("finished", success=T0 + timedelta(minutes=1)))
    assert await messages(watched) == [
        ("alert", "CA"),
        ("alert", "CB"),
        ("alert_recovery", "CA"),
        ("alert_update", "CA"),
        ("alert_recovery", "CB"),
        ("alert_update", "CB"),
    ]
    async with watched() as session:
        recovery = await session.scalar(
            select(OutboxMessage).where(
                OutboxMessage.method == "alert_recovery", OutboxMessage.channel_id == "CA"
            )
        )
    assert recovery.thread_of.startswith("alert:") and recovery.thread_of.endswith(":CA")


async def test_a_retry_in_progress_is_not_a_recovery(watched):
    await check(watched, snap("failed"))
    await check(watched, snap("started"))
    await check(watched, snap("to_retry"))
    await check(watched, snap("failed"))
    assert [m for m, _ in await messages(watched)] == ["alert", "alert"]


async def test_flapping_without_success_does_not_alert_again(watched):
    await check(watched, snap("failed"))
    await check(watched, snap("failed", enabled=False))  # disabled: resolved quietly
    await check(watched, snap("failed"))  # enabled again, still no success
    kinds = [m for m, _ in await messages(watched)]
    assert kinds.count("alert") == 2 and "alert_recovery" not in kinds


async def test_a_new_failure_after_a_success_is_a_new_alert(watched):
    await check(watched, snap("failed"))
    await check(watched, snap("finished", success=T0 + timedelta(minutes=1)))
    await check(watched, snap("failed", success=T0 + timedelta(minutes=1)))
    assert [m for m, _ in await messages(watched)].count("alert") == 4


async def test_disabled_mirrors_never_alert(watched):
    await check(watched, snap("failed", enabled=False))
    assert await messages(watched) == []


async def test_a_changed_error_updates_the_alert_in_place(watched):
    await check(watched, snap("failed"))
    await check(watched, snap("failed", error="Host key verification failed."))
    assert await messages(watched) == [
        ("alert", "CA"),
        ("alert", "CB"),
        ("alert_update", "CA"),
        ("alert_update", "CB"),
    ]


async def test_reminders_come_every_remind_after_counted_from_the_alert(watched):
    await check(watched, snap("failed"), remind_after=DAY)
    await check(watched, snap("failed"), at=T0 + DAY - timedelta(seconds=1))
    await check(watched, snap("failed"), at=T0 + DAY)
    await check(watched, snap("failed"), at=T0 + DAY + timedelta(hours=1))
    await check(watched, snap("failed"), at=T0 + 2 * DAY)
    kinds = [m for m, c in await messages(watched) if c == "CA"]
    assert kinds == ["alert", "alert_reminder", "alert_reminder"]


async def test_a_muted_channel_gets_no_alert_reminder_or_recovery(watched):
    async with transaction(watched) as session:
        session.add(
            Mute(
                channel_id="CB",
                project_id=1,
                mirror_key=KEY,
                muted_until=T0 + 3 * DAY,
                muted_by="U",
            )
        )
    await check(watched, snap("failed"))
    await check(watched, snap("failed"), at=T0 + DAY)
    await check(watched, snap("finished", success=T0 + DAY), at=T0 + DAY)
    assert {c for _, c in await messages(watched)} == {"CA"}


async def test_a_deleted_failing_mirror_resolves_quietly(watched):
    await check(watched, snap("failed"))
    await check(watched)  # the mirror is gone from GitLab
    kinds = [m for m, _ in await messages(watched)]
    assert kinds == ["alert", "alert", "alert_update", "alert_update"]


async def test_a_channel_that_starts_watching_a_failing_mirror_is_told(watched):
    await check(watched, snap("failed"))
    async with transaction(watched) as session:
        session.add(subscription(1, "CC"))
    await check(watched, snap("failed"))
    assert ("alert", "CC") in await messages(watched)


async def test_pull_mirror_failures_alert_too(watched):
    await check(watched, snap("failed", key="pull"))
    assert [m for m, _ in await messages(watched)] == ["alert", "alert"]


async def test_checks_on_both_databases_claim_each_message_once(database_url):
    from bot.store.db import create_engine, session_factory
    from bot.store.migrate import upgrade_database

    upgrade_database(database_url)
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    try:
        async with transaction(sessions) as session:
            session.add(subscription(1, "CA"))
        for _ in range(3):
            await check(sessions, snap("failed"))
        first = await claim_due(sessions, "replica-a", limit=20)
        second = await claim_due(sessions, "replica-b", limit=20)
        assert [m.kind for m in first] == ["alert"] and second == []
    finally:
        await engine.dispose()


async def test_unwatching_stops_alerts(watched):
    from sqlalchemy import delete

    async with transaction(watched) as session:
        await session.execute(delete(Subscription).where(Subscription.channel_id == "CB"))
    await check(watched, snap("failed"))
    assert await messages(watched) == [("alert", "CA")]


async def test_only_the_claimer_finishes_a_claim(database_url):
    """A sender whose claim ran out (a slow Slack) and was taken by another replica can
    neither mark the message sent nor release it for a third sender."""
    from sqlalchemy import update

    from bot.domain.outbox import mark_sent, retry_later
    from bot.store.db import create_engine, session_factory
    from bot.store.migrate import upgrade_database

    upgrade_database(database_url)
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    try:
        async with transaction(sessions) as session:
            session.add(subscription(1, "CA"))
        await check(sessions, snap("failed"))
        [slow] = await claim_due(sessions, "replica-a")
        assert await claim_due(sessions, "replica-b") == []  # within the claim: nobody else
        async with transaction(sessions) as session:  # replica-a's claim runs out
            await session.execute(
                update(OutboxMessage).values(claimed_until=datetime.now(UTC) - timedelta(seconds=1))
            )
        [taken] = await claim_due(sessions, "replica-b")
        assert taken.id == slow.id
        await retry_later(sessions, slow, error="timed out")
        assert await claim_due(sessions, "replica-c") == []  # still replica-b's
        assert await mark_sent(sessions, slow, "1.1") is False
        assert await mark_sent(sessions, taken, "2.2") is True
        async with sessions() as session:
            row = await session.get(OutboxMessage, taken.id)
        assert row is not None
        assert (row.status, row.message_ts, row.attempts) == ("sent", "2.2", 0)
    finally:
        await engine.dispose()
