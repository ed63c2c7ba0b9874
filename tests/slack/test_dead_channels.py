"""Permanent Slack errors: a dead channel is not retried for hours. Its subscriptions are
marked broken, the person who made them gets one direct message, `watching` and the App
Home show it, and a new `watch` repairs it. A rejected token is an operator's problem."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import httpx
import pytest
from sqlalchemy import create_engine, select

from bot.store.crypto import generate_key
from bot.store.db import sync_url
from bot.store.models import OutboxMessage
from tests.fakes.slack import BOT_USER_ID, SlackStandIn
from tests.slack.conftest import Harness, start_harness
from tests.slack.test_alerts_e2e import AUTH_ERROR, WEBHOOK_SECRET, push_event, send_webhook

CHANNEL = "C0ALERTS01"
WORKING = "C0WORKS001"


@pytest.fixture
def harness(sample, gitlab_sim, slack, database_url) -> Iterator[Harness]:
    h = start_harness(
        sample,
        gitlab_sim,
        slack,
        database_url,  # breaking a subscription is one conditional UPDATE: both backends
        generate_key(),
        gitlab_webhook_secret=WEBHOOK_SECRET,
        mirrorbot_poll_interval=3600,  # webhooks trigger the checks here
    )
    yield h
    h.server.stop()


@pytest.fixture
def watching(linked: Harness) -> Harness:
    linked.slack.add_channel(CHANNEL, "mirror-alerts", members=["UALICE", "UBOB"])
    linked.slack.add_channel(WORKING, "still-fine", members=["UBOB"])
    linked.command("watch group/app", channel=CHANNEL)
    linked.wait_response("<#C0ALERTS01|mirror-alerts> now gets alerts")
    linked.command("watch group/app", channel=WORKING, user="UBOB")
    linked.wait_response("<#C0WORKS001|still-fine> now gets alerts")
    return linked


def outbox_rows(h: Harness, channel: str) -> list[OutboxMessage]:
    engine = create_engine(sync_url(h.settings.database_url))
    try:
        with engine.connect() as connection:
            return list(
                connection.execute(
                    select(OutboxMessage).where(OutboxMessage.channel_id == channel)
                ).all()
            )
    finally:
        engine.dispose()


def direct_messages(h: Harness, user: str) -> list[dict]:
    return [c.body for c in h.posts() if c.body.get("channel") == user]


def alerts_in(h: Harness, channel: str) -> list[dict]:
    return [
        c.body
        for c in h.posts()
        if c.body.get("channel") == channel and "Mirror failing" in c.body.get("text", "")
    ]


def archive(slack: SlackStandIn) -> None:
    slack.archive(CHANNEL)


def delete(slack: SlackStandIn) -> None:
    slack.delete_channel(CHANNEL)


def bot_removed(slack: SlackStandIn) -> None:
    slack.remove_bot(CHANNEL)
    slack.fail_posts(CHANNEL, "not_in_channel")  # a workspace without chat:write.public


@pytest.mark.parametrize(
    ("break_channel", "error", "words"),
    [
        (archive, "is_archived", "the channel was archived"),
        (delete, "channel_not_found", "the channel was deleted"),
        (bot_removed, "not_in_channel", "I am no longer a member of the channel"),
    ],
)
def test_a_dead_channel_is_not_retried_and_its_watcher_is_told_once(
    watching: Harness, break_channel: Callable[[SlackStandIn], None], error: str, words: str
):
    h = watching
    break_channel(h.slack)
    h.sample.world.fail_now(h.sample.https_mirror, AUTH_ERROR)
    send_webhook(h, push_event(h))
    [dm] = h.wait(lambda: direct_messages(h, "UALICE"))
    text = str(dm)
    assert "group/app" in text and "<#C0ALERTS01|mirror-alerts>" in text and words in text
    assert "/invite @Mirrorbot" in text and "#another-channel" in text
    [refused] = [c for c in h.slack.refused("chat.postMessage") if c.body["channel"] == CHANNEL]
    assert refused.error == error
    [row] = outbox_rows(h, CHANNEL)
    assert row.status == "failed" and row.attempts == 0  # given up at once, never retried

    # A second mirror fails: the working channel hears of it, the broken one is not tried
    # again, and nobody gets a second direct message.
    h.sample.world.fail_now(h.sample.ssh_mirror, "fatal: Could not read from remote repository.")
    send_webhook(h, push_event(h))
    h.wait(lambda: len(alerts_in(h, WORKING)) == 2)
    posts = [
        c for c in h.slack.calls if c.method.startswith("chat.") and c.body["channel"] == CHANNEL
    ]
    assert len(posts) == 1
    assert len(direct_messages(h, "UALICE")) == 1
    assert direct_messages(h, "UBOB") == []  # bob's subscription is in a working channel

    h.command("watching", channel=CHANNEL)
    body = h.wait_response(":warning: *broken*")
    assert words in str(body)


def test_the_app_home_shows_a_broken_subscription(watching: Harness):
    h = watching
    h.slack.archive(CHANNEL)
    h.sample.world.fail_now(h.sample.https_mirror, AUTH_ERROR)
    send_webhook(h, push_event(h))
    h.wait(lambda: direct_messages(h, "UALICE"))
    assert h.agent.event({"type": "app_home_opened", "user": "UALICE", "tab": "home"})
    view = h.wait_post("Alerts that cannot be delivered", method="views.publish")
    assert "group/app" in str(view) and "the channel was archived" in str(view)


def test_a_new_watch_into_the_working_channel_repairs_it(watching: Harness):
    h = watching
    h.slack.remove_bot(CHANNEL)
    h.slack.fail_posts(CHANNEL, "not_in_channel")
    h.sample.world.fail_now(h.sample.https_mirror, AUTH_ERROR)
    send_webhook(h, push_event(h))
    h.wait(lambda: direct_messages(h, "UALICE"))

    h.slack.fail_posts(CHANNEL, None)
    h.slack.channel(CHANNEL).members.add(BOT_USER_ID)  # /invite @Mirrorbot
    h.slack.clear()
    h.command("watch group/app", channel=CHANNEL)
    h.wait_response("now gets alerts")
    h.command("watching", channel=CHANNEL)
    body = h.wait_response("This channel watches")
    assert "broken" not in str(body)
    send_webhook(h, push_event(h))  # the mirror still fails: the channel now hears of it
    [alert] = h.wait(lambda: alerts_in(h, CHANNEL))
    assert "push mirror" in alert["text"]


def test_a_rejected_token_fails_the_message_logs_once_and_shows_on_healthz(
    watching: Harness, caplog: pytest.LogCaptureFixture
):
    h = watching
    caplog.set_level(logging.ERROR, logger="bot.slack.outbox_sender")
    h.slack.fail("chat.postMessage", "invalid_auth", times=4)
    h.sample.world.fail_now(h.sample.https_mirror, AUTH_ERROR)
    h.sample.world.fail_now(h.sample.ssh_mirror, "fatal: Could not read from remote repository.")
    send_webhook(h, push_event(h))
    # Two mirrors in two channels: four posts, every one refused, none retried.
    h.wait(lambda: len(h.slack.refused("chat.postMessage")) == 4)
    h.wait(
        lambda: all(r.status == "failed" for r in outbox_rows(h, CHANNEL) + outbox_rows(h, WORKING))
    )
    assert all(r.attempts == 0 for r in outbox_rows(h, CHANNEL) + outbox_rows(h, WORKING))
    health = httpx.get(f"{h.server.url}/healthz").json()
    assert health["status"] == "degraded" and health["slack"]["token_rejected"] == "invalid_auth"
    metrics = httpx.get(f"{h.server.url}/metrics").text
    assert "mirrorbot_slack_token_rejected 1.0" in metrics
    logged = [r for r in caplog.records if "rejects the bot token" in r.getMessage()]
    assert len(logged) == 1
    assert direct_messages(h, "UALICE") == [] and direct_messages(h, "UBOB") == []
    h.command("watching", channel=CHANNEL)
    assert "broken" not in str(h.wait_response("This channel watches"))

    # The token works again (the fault is used up): the next alert delivered clears it.
    third = h.sample.world.add_push_mirror(
        h.sample.app, "https://backup.example.org/acme/app.git", enabled=True
    )
    h.sample.world.fail_now(third, AUTH_ERROR)
    send_webhook(h, push_event(h))
    h.wait(lambda: alerts_in(h, CHANNEL))
    h.wait(lambda: httpx.get(f"{h.server.url}/healthz").json()["status"] == "ok", timeout=10)


def test_a_token_rejected_at_start_up_shows_on_healthz_at_once(
    sample, gitlab_sim, slack, sqlite_url
):
    slack.fail("auth.test", "account_inactive")
    h = start_harness(sample, gitlab_sim, slack, sqlite_url, generate_key())
    try:
        health = httpx.get(f"{h.server.url}/healthz").json()
        assert health["slack"]["token_rejected"] == "account_inactive"
    finally:
        h.server.stop()
