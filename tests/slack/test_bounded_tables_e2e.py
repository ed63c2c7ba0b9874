"""Bounded tables, through the running app: a webhook keeps only what the bot uses, pushes
schedule checks only when a monitor will run them, and the retention loop prunes."""

from datetime import timedelta

import pytest
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import func, insert, select, text

from bot.store.crypto import generate_key
from bot.store.db import sync_url
from bot.store.models import AuditEntry, OutboxMessage, ScheduledCheck, WebhookEvent, utcnow
from tests.slack.conftest import Harness, start_harness
from tests.slack.test_alerts_e2e import WEBHOOK_SECRET, push_event, send_webhook

AUTHOR_EMAIL = "carol.secret@example.org"
COMMIT_MESSAGE = "Fix the thing nobody may read about"


def run_sql(h: Harness, statement):
    engine = create_sync_engine(sync_url(h.settings.database_url))
    try:
        with engine.begin() as connection:
            result = connection.execute(statement)
            return result.all() if result.returns_rows else None
    finally:
        engine.dispose()


def processed(h: Harness) -> int:
    return run_sql(h, select(func.count()).where(WebhookEvent.processed_at.is_not(None)))[0][0]


def kept_keys(h: Harness) -> set[str]:
    events = run_sql(h, select(WebhookEvent.delivery_key))
    messages = run_sql(h, select(OutboxMessage.dedupe_key))
    return {row[0] for row in events + messages}


def start(sample, gitlab_sim, slack, database_url, **extra) -> Harness:
    return start_harness(
        sample,
        gitlab_sim,
        slack,
        database_url,
        generate_key(),
        gitlab_webhook_secret=WEBHOOK_SECRET,
        mirrorbot_poll_interval=3600,
        **extra,
    )


@pytest.fixture
def harness(sample, gitlab_sim, slack, database_url):
    h = start(sample, gitlab_sim, slack, database_url)
    yield h
    h.server.stop()


def test_a_stored_push_keeps_no_commit_messages_or_e_mail_addresses(harness: Harness):
    push = push_event(harness)
    push["user_email"] = AUTHOR_EMAIL
    push["commits"] = [
        {
            "id": "a" * 40,
            "message": COMMIT_MESSAGE,
            "author": {"name": "Carol", "email": AUTHOR_EMAIL},
        }
    ]
    assert send_webhook(harness, push).json() == {"status": "stored"}
    rows = run_sql(harness, text("SELECT * FROM webhook_inbox"))
    assert len(rows) == 1
    stored = " ".join(str(value) for value in rows[0])
    assert str(harness.sample.app.id) in stored  # the project it names is kept
    assert AUTHOR_EMAIL not in stored and COMMIT_MESSAGE not in stored


def test_the_same_delivery_is_still_recognised_after_the_payload_is_dropped(harness: Harness):
    first = send_webhook(harness, push_event(harness), idempotency_key="k1", event_uuid="u1")
    retry = send_webhook(harness, push_event(harness), idempotency_key="k1", event_uuid="u1")
    other_hook = send_webhook(harness, push_event(harness), event_uuid="u1")
    assert [r.json()["status"] for r in (first, retry, other_hook)] == [
        "stored",
        "duplicate",
        "duplicate",
    ]


def test_without_a_service_token_pushes_schedule_no_checks(sample, gitlab_sim, slack, sqlite_url):
    h = start(sample, gitlab_sim, slack, sqlite_url, gitlab_service_token=None)
    try:
        h.link("UALICE", "glpat-alice-maintainer-0001")
        h.command("watch group/app", channel="CALERTS")
        h.wait_response("now gets alerts")
        for _ in range(3):
            assert send_webhook(h, push_event(h)).status_code == 200
        h.wait(lambda: processed(h) == 3)  # the inbox pass has seen every push
        assert run_sql(h, select(func.count()).select_from(ScheduledCheck))[0][0] == 0
    finally:
        h.server.stop()


def test_the_retention_loop_deletes_what_is_older_than_the_retention_days(
    sample, gitlab_sim, slack, database_url
):
    h = start(sample, gitlab_sim, slack, database_url, mirrorbot_retention_days=2)
    h.server.stop()  # fill the tables while nothing runs, then start again
    now = utcnow()
    old, recent = now - timedelta(days=3), now - timedelta(days=1)
    common = {"event_kind": "Push Hook/push", "project_id": 1, "attempts": 0}
    run_sql(
        h,
        insert(WebhookEvent).values(
            [
                {
                    **common,
                    "delivery_key": key,
                    "received_at": at,
                    "process_after": at,
                    "processed_at": at,
                }
                for key, at in (("old1", old), ("old2", old), ("recent", recent))
            ]
        ),
    )
    run_sql(
        h,
        insert(OutboxMessage).values(
            [
                {
                    "dedupe_key": key,
                    "method": "alert",
                    "channel_id": "C1",
                    "payload": {},
                    "status": "sent",
                    "attempts": 1,
                    "next_attempt_at": at,
                    "created_at": at,
                }
                for key, at in (("sent-old", old), ("sent-recent", recent))
            ]
        ),
    )
    run_sql(
        h,
        insert(AuditEntry).values(
            at=old, actor_id="U", event="executed", operation="sync", project="group/app"
        ),
    )
    h = start(sample, gitlab_sim, slack, database_url, mirrorbot_retention_days=2)
    try:
        h.wait(lambda: not {"old1", "old2", "sent-old"} & kept_keys(h))  # the loop ran
        keys = {row[0] for row in run_sql(h, select(WebhookEvent.delivery_key))}
        messages = {row[0] for row in run_sql(h, select(OutboxMessage.dedupe_key))}
        audit = run_sql(h, select(func.count()).select_from(AuditEntry))[0][0]
    finally:
        h.server.stop()
    assert keys == {"recent"}
    assert messages == {"sent-recent"}
    assert audit == 1  # the audit log is kept
