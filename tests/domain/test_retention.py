"""Retention: what is past MIRRORBOT_RETENTION_DAYS is deleted in batches, what the bot
still needs is kept, and the queries every pass and scrape make are served by an index."""

from datetime import timedelta

from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import select, text

from bot.domain import inbox
from bot.domain.monitor import schedule_checks
from bot.domain.retention import prune
from bot.store.db import create_engine, session_factory, sync_url, transaction
from bot.store.migrate import upgrade_database
from bot.store.models import (
    AlertMessage,
    AuditEntry,
    DeviceLogin,
    MirrorState,
    OutboxMessage,
    ScheduledCheck,
    WebhookEvent,
    utcnow,
)

OLD = timedelta(days=8)
RECENT = timedelta(days=1)


def event(key: str, *, received_ago: timedelta, processed_ago: timedelta | None) -> WebhookEvent:
    now = utcnow()
    return WebhookEvent(
        delivery_key=key,
        event_kind="Push Hook/push",
        project_id=7,
        received_at=now - received_ago,
        process_after=now - received_ago,
        processed_at=None if processed_ago is None else now - processed_ago,
        attempts=0,
    )


def message(key: str, status: str, ago: timedelta, thread_of: str | None = None) -> OutboxMessage:
    return OutboxMessage(
        dedupe_key=key,
        method="alert",
        channel_id="C1",
        payload={},
        thread_of=thread_of,
        status=status,
        created_at=utcnow() - ago,
        next_attempt_at=utcnow(),
    )


def alert(state: MirrorState, episode: int, resolved_ago: timedelta | None) -> AlertMessage:
    return AlertMessage(
        mirror_state_id=state.id,
        channel_id="C1",
        episode=episode,
        outbox_key=f"alert:{episode}",
        posted_at=utcnow() - OLD - OLD,
        resolved_at=None if resolved_ago is None else utcnow() - resolved_ago,
    )


def device_login(code: str, *, finished_ago: timedelta | None) -> DeviceLogin:
    now = utcnow()
    return DeviceLogin(
        slack_team_id="T",
        slack_user_id="U",
        channel_id="D",
        state="pending" if finished_ago is None else "expired",
        device_code_ciphertext="encrypted",
        user_code=code,
        verification_uri_complete="https://gitlab.example/oauth/device",
        interval_seconds=5.0,
        next_poll_at=now,
        expires_at=now,
        finished_at=None if finished_ago is None else now - finished_ago,
    )


async def test_pruning_deletes_what_is_past_retention_and_keeps_what_is_still_needed(
    database_url,
):
    upgrade_database(database_url)
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    try:
        async with transaction(sessions) as session:
            session.add_all(
                [event(f"old{n}", received_ago=OLD, processed_ago=OLD) for n in range(5)]
                + [
                    event("recent", received_ago=OLD, processed_ago=RECENT),
                    event("pending", received_ago=OLD, processed_ago=None),
                ]
            )
            state = MirrorState(project_id=7, project_path="g/a", mirror_key="push:1")
            state.update_status = "failed"
            session.add(state)
            await session.flush()
            session.add_all(
                [
                    alert(state, 1, resolved_ago=OLD),
                    alert(state, 2, resolved_ago=RECENT),
                    alert(state, 3, resolved_ago=None),  # still failing, posted long ago
                    message("alert:1", "sent", OLD),
                    message("alert:1:recovered", "sent", OLD, thread_of="alert:1"),
                    message("gave-up", "failed", OLD),
                    message("alert:3", "sent", OLD),  # its episode is not over
                    message("parent", "sent", OLD),
                    message("reply", "pending", OLD, thread_of="parent"),
                    message("sent-recently", "sent", RECENT),
                    ScheduledCheck(project_id=7, reason="push +15s", due_at=utcnow() - OLD),
                    ScheduledCheck(project_id=8, reason="push +15s", due_at=utcnow()),
                    AuditEntry(
                        at=utcnow() - OLD - OLD, actor_id="U", event="executed", operation="sync"
                    ),
                    device_login("finished-long-ago", finished_ago=OLD),
                    device_login("finished-recently", finished_ago=RECENT),
                    device_login("still-pending", finished_ago=None),
                ]
            )

        pruned = await prune(sessions, keep=timedelta(days=7), batch=2)

        async with sessions() as session:
            events = set(await session.scalars(select(WebhookEvent.delivery_key)))
            messages = set(await session.scalars(select(OutboxMessage.dedupe_key)))
            episodes = set(await session.scalars(select(AlertMessage.episode)))
            checks = set(await session.scalars(select(ScheduledCheck.project_id)))
            audit = list(await session.scalars(select(AuditEntry.id)))
            logins = set(await session.scalars(select(DeviceLogin.user_code)))
    finally:
        await engine.dispose()
    assert events == {"recent", "pending"}
    assert messages == {"alert:3", "parent", "reply", "sent-recently"}
    assert episodes == {2, 3}
    assert checks == {8}
    assert len(audit) == 1
    assert logins == {"finished-recently", "still-pending"}
    assert pruned.rows == {
        "device_logins": 1,
        "webhook_inbox": 5,
        "slack_outbox": 3,
        "alert_messages": 1,
        "scheduled_checks": 1,
        "seen_slack_requests": 0,  # none admitted here (see tests/store/test_seen_requests.py)
    }


async def test_a_burst_of_pushes_leaves_one_pending_check_per_project_and_delay(database_url):
    upgrade_database(database_url)
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    try:
        for _ in range(3):
            async with transaction(sessions) as session:
                await schedule_checks(session, 7, [15, 120], "push")
                await schedule_checks(session, 8, [15], "push")
        async with sessions() as session:
            rows = (
                await session.execute(select(ScheduledCheck.project_id, ScheduledCheck.reason))
            ).all()
    finally:
        await engine.dispose()
    assert sorted(rows) == [(7, "push +120s"), (7, "push +15s"), (8, "push +15s")]


def plan_of(database_url: str, statement) -> str:
    engine = create_sync_engine(sync_url(database_url))
    try:
        sql = str(statement.compile(engine, compile_kwargs={"literal_binds": True}))
        with engine.connect() as connection:
            if engine.dialect.name == "sqlite":
                rows = connection.execute(text(f"EXPLAIN QUERY PLAN {sql}")).all()
                return "\n".join(str(row[-1]) for row in rows)
            # On a nearly empty table the planner rightly prefers a scan: forbid it, so
            # the plan shows whether an index could serve the query at all.
            connection.execute(text("SET enable_seqscan = off"))
            return "\n".join(row[0] for row in connection.execute(text(f"EXPLAIN {sql}")))
    finally:
        engine.dispose()


def test_the_inbox_pass_and_the_metrics_scrape_are_served_by_an_index(database_url):
    upgrade_database(database_url)
    pass_query = inbox.pending_events().order_by(WebhookEvent.id).limit(500)
    depth_query = select(text("count(*)")).select_from(inbox.pending_events().subquery())
    for query in (pass_query, depth_query):
        plan = plan_of(database_url, query)
        assert "ix_webhook_inbox_processed_at" in plan, plan
