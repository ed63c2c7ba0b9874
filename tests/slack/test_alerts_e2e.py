"""Failure alerts end to end: webhooks and the monitor in, one alert per failure out."""

import json
import logging
import uuid
from datetime import UTC, datetime

import httpx
import pytest
import sqlalchemy
from sqlalchemy import select

from bot.commands.actions import AlertActions, MirrorRef
from bot.domain.subscriptions import push_key
from bot.simulator import Fault
from bot.simulator.world import SimPushMirror
from bot.store.crypto import generate_key
from bot.store.db import sync_url
from bot.store.models import MirrorPresence, OutboxMessage, WebhookEvent
from tests.conftest import ALICE_TOKEN
from tests.fakes.slack import SlackCall
from tests.slack.conftest import WEBHOOK_SECRET, Harness, start_harness

AUTH_ERROR = "fatal: Authentication failed for 'https://github.example.org/acme/app.git/'"


def push_event(h: Harness) -> dict:
    project = h.sample.app
    return {
        "object_kind": "push",
        "event_name": "push",
        "before": "0" * 40,
        "after": "a" * 40,
        "ref": "refs/heads/main",
        "checkout_sha": "a" * 40,
        "user_id": h.sample.alice.id,
        "user_name": "Alice",
        "user_username": "alice",
        "project_id": project.id,
        "project": {
            "id": project.id,
            "name": "app",
            "path_with_namespace": project.path,
            "web_url": f"{h.gitlab.url}/{project.path}",
            "default_branch": "main",
        },
        "commits": [],
        "total_commits_count": 1,
        "repository": {"name": "app"},
    }


def send_webhook(
    h: Harness,
    payload: dict | bytes,
    *,
    token: str = WEBHOOK_SECRET,
    event: str = "Push Hook",
    event_uuid: str | None = None,
    idempotency_key: str | None = None,
) -> httpx.Response:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Gitlab-Event": event,
        "X-Gitlab-Token": token,
        "X-Gitlab-Event-UUID": event_uuid or str(uuid.uuid4()),
        "Idempotency-Key": idempotency_key or str(uuid.uuid4()),
        "X-Gitlab-Webhook-UUID": str(uuid.uuid4()),
    }
    return httpx.post(f"{h.server.url}/gitlab/webhook", content=body, headers=headers)


def alerts(h: Harness, channel: str = "CALERTS") -> list[dict]:
    return [c.body for c in alert_calls(h, channel)]


def alert_calls(h: Harness, channel: str = "CALERTS") -> list[SlackCall]:
    return [
        c
        for c in h.posts()
        if c.body.get("channel") == channel and "Mirror failing" in c.body.get("text", "")
    ]


def checked_since(h: Harness, mirror: SimPushMirror, since: datetime, status: str = "failed"):
    """The monitor's observation of `mirror`, made after `since` and showing `status`: the
    check that would have alerted has run (call after `h.settle()`)."""
    seen = h.observation(h.sample.app.id, push_key(mirror.id))
    assert seen is not None, "the mirror was never checked"
    assert seen.observed_at > since, "the mirror was not checked after the webhook"
    assert seen.update_status == status
    return seen


def outbox_rows(h: Harness, channel: str = "CALERTS") -> list[OutboxMessage]:
    return h.read(select(OutboxMessage).where(OutboxMessage.channel_id == channel))


@pytest.fixture
def watching(linked: Harness) -> Harness:
    linked.command("watch group/app", channel="CALERTS")
    linked.wait_response("now gets alerts")
    return linked


@pytest.fixture
def harness(webhook_harness: Harness) -> Harness:
    return webhook_harness


def test_a_push_to_a_failing_mirror_posts_one_alert(watching: Harness):
    mirror = watching.sample.https_mirror
    watching.sample.world.fail_now(mirror, AUTH_ERROR)
    assert send_webhook(watching, push_event(watching)).json() == {"status": "stored"}
    watching.wait_post("Mirror failing")
    [alert] = alerts(watching)
    text = json.dumps(alert, ensure_ascii=False)
    assert "Likely cause: Authentication failed" in text
    assert "https://*****:*****@github.example.org/acme/app.git" in text
    assert "s3cr3t" not in text
    buttons = [
        e["text"]["text"] for b in alert["blocks"] if b["type"] == "actions" for e in b["elements"]
    ]
    assert buttons == ["Retry sync", "Rotate credentials", "Disable", "Mute 24 h", "Details"]
    # More pushes while it keeps failing add nothing.
    since = datetime.now(UTC)
    for _ in range(3):
        assert send_webhook(watching, push_event(watching)).json() == {"status": "stored"}
    watching.settle()
    checked_since(watching, mirror, since)
    assert len(alerts(watching)) == 1


def test_the_same_delivery_is_processed_once(watching: Harness):
    event_uuid, key = str(uuid.uuid4()), str(uuid.uuid4())
    first = send_webhook(watching, push_event(watching), event_uuid=event_uuid, idempotency_key=key)
    retry = send_webhook(watching, push_event(watching), event_uuid=event_uuid, idempotency_key=key)
    other_hook = send_webhook(watching, push_event(watching), event_uuid=event_uuid)
    assert first.json()["status"] == "stored"
    assert retry.json()["status"] == "duplicate" and other_hook.json()["status"] == "duplicate"


def test_recovery_replies_in_the_alert_thread(watching: Harness):
    https, ssh = watching.sample.https_mirror, watching.sample.ssh_mirror
    watching.sample.world.fail_now(https, AUTH_ERROR)
    watching.sample.world.fail_now(ssh, "Host key verification failed.")
    send_webhook(watching, push_event(watching))
    watching.wait(lambda: len(alert_calls(watching)) == 2)
    [https_alert] = [c for c in alert_calls(watching) if "github.example.org" in str(c.body)]
    [ssh_alert] = [c for c in alert_calls(watching) if "ssh.example.org" in str(c.body)]
    assert https_alert.ts and ssh_alert.ts and https_alert.ts != ssh_alert.ts
    watching.sample.world.set_outcome(https, None)  # only the https mirror recovers
    watching.sample.world.push(watching.sample.app)  # the mirror updates after the push
    send_webhook(watching, push_event(watching))
    reply = watching.wait_post("Recovered")
    assert reply["channel"] == "CALERTS"
    assert reply["thread_ts"] == https_alert.ts  # in the thread of its own alert
    resolved = watching.wait_post("Resolved: the mirror recovered", method="chat.update")
    assert resolved["channel"] == "CALERTS" and resolved["ts"] == https_alert.ts
    watching.settle()
    assert [c.body["ts"] for c in watching.posts("chat.update")] == [https_alert.ts]


def test_disabled_mirrors_do_not_alert(watching: Harness):
    mirror = watching.sample.https_mirror
    watching.sample.world.fail_now(mirror, AUTH_ERROR)
    mirror.enabled = False
    since = datetime.now(UTC)
    assert send_webhook(watching, push_event(watching)).json() == {"status": "stored"}
    watching.settle()
    assert checked_since(watching, mirror, since).enabled is False
    assert alerts(watching) == [] and outbox_rows(watching) == []


def test_mute_silences_one_mirror_in_one_channel(watching: Harness):
    mirror = watching.sample.https_mirror
    watching.click(
        AlertActions.MUTE,
        MirrorRef(project_id=watching.sample.app.id, mirror_id=mirror.id).dump(),
        channel="CALERTS",
    )
    watching.wait_post("muted alerts for mirror")
    watching.sample.world.fail_now(mirror, AUTH_ERROR)
    since = datetime.now(UTC)
    assert send_webhook(watching, push_event(watching)).json() == {"status": "stored"}
    watching.settle()
    assert checked_since(watching, mirror, since).alert_state == "failing"  # seen, but muted
    assert alerts(watching) == [] and outbox_rows(watching) == []
    watching.command("watching", channel="CALERTS")
    watching.wait_response("muted by <@UALICE>")
    watching.command(f"unmute group/app {mirror.id}", channel="CALERTS")
    watching.wait_response("back on")
    send_webhook(watching, push_event(watching))
    watching.wait_post("Mirror failing")


def test_a_wrong_webhook_token_is_refused_and_nothing_happens(watching: Harness):
    watching.sample.world.fail_now(watching.sample.https_mirror, AUTH_ERROR)
    response = send_webhook(watching, push_event(watching), token="guess")
    assert response.status_code == 401
    # A delivery is stored before it is answered: a refused one left nothing to process.
    assert watching.count(WebhookEvent) == 0
    watching.settle()
    assert alerts(watching) == [] and outbox_rows(watching) == []
    # The same delivery with the right secret does alert: the refusal is what stopped it.
    assert send_webhook(watching, push_event(watching)).json() == {"status": "stored"}
    watching.wait_post("Mirror failing")


@pytest.mark.parametrize(
    ("body", "event", "status"),
    [
        (b"{not json", "Push Hook", 400),
        (b"[1, 2]", "Push Hook", 400),
        (json.dumps({"object_kind": "issue"}).encode(), "Issue Hook", 422),
        (b"{" + b" " * (6 * 1024 * 1024) + b"}", "Push Hook", 413),
    ],
)
def test_bad_webhooks_get_a_clear_4xx(harness: Harness, body, event, status):
    response = send_webhook(harness, body, event=event)
    assert response.status_code == status
    assert "error" in response.json()


def test_an_oversized_webhook_without_a_length_is_refused_while_reading(harness: Harness):
    def chunks():
        for _ in range(6):
            yield b" " * (1024 * 1024)

    response = httpx.post(
        f"{harness.server.url}/gitlab/webhook",
        content=chunks(),  # sent chunked: no Content-Length to refuse it by
        headers={"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": WEBHOOK_SECRET},
    )
    assert response.status_code == 413
    assert response.json() == {"error": "payload too large"}


def test_the_webhook_answers_only_post(harness: Harness):
    response = httpx.get(f"{harness.server.url}/gitlab/webhook")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


def test_an_event_that_cannot_be_stored_is_refused_with_503(harness: Harness):
    engine = sqlalchemy.create_engine(sync_url(harness.settings.database_url))
    with engine.begin() as connection:  # the database refuses the insert: its table is gone
        connection.execute(sqlalchemy.text("DROP TABLE webhook_inbox"))
    engine.dispose()
    response = send_webhook(harness, {"object_kind": "push", "project_id": 1})
    assert response.status_code == 503
    assert "could not be stored" in response.json()["error"]


def test_stored_events_are_logged_at_debug_and_refusals_at_info(harness: Harness, caplog):
    caplog.set_level(logging.DEBUG, logger="mirrorbot.http")

    def lines() -> list[tuple[int, str]]:
        # The line is written once the answer is out, so the client can have it first.
        return [
            (record.levelno, record.getMessage().split(" in ")[0])
            for record in list(caplog.records)
            if record.name == "mirrorbot.http" and "/gitlab/webhook" in record.getMessage()
        ]

    assert send_webhook(harness, {"object_kind": "push", "project_id": 1}).status_code == 200
    harness.wait(lambda: len(lines()) == 1)
    assert send_webhook(harness, {"object_kind": "push"}, token="wrong").status_code == 401
    harness.wait(lambda: len(lines()) == 2)
    assert lines() == [
        (logging.DEBUG, "POST /gitlab/webhook -> 200"),
        (logging.INFO, "POST /gitlab/webhook -> 401"),
    ]


def test_the_monitor_alone_detects_a_failure(sample, gitlab_sim, slack, sqlite_url):
    h = start_harness(
        sample, gitlab_sim, slack, sqlite_url, generate_key(), mirrorbot_poll_interval=1
    )
    try:
        h.link("UALICE", ALICE_TOKEN)
        h.command("watch group/app", channel="CALERTS")
        h.wait_response("now gets alerts")
        sample.world.fail_now(sample.ssh_mirror, "Host key verification failed.")
        alert = h.wait_post("Mirror failing", timeout=10)
        assert "Host key changed or unknown" in json.dumps(alert)
    finally:
        h.server.stop()


@pytest.mark.parametrize("graphql", ["answers", "refused"])
def test_a_failing_pull_mirror_alerts_and_recovers_by_the_monitor_alone(
    sample, gitlab_sim, slack, sqlite_url, graphql
):
    """Between re-checks (here: none) the scan sees the pull mirror by GraphQL; where
    GitLab refuses GraphQL, by REST: the same alert and recovery either way."""
    world = sample.world
    pull = world.set_pull_mirror(sample.app, "https://puller:pw@up.example.org/app.git")
    world.succeed_at(pull, datetime.now(UTC))
    if graphql == "refused":
        gitlab_sim.inject(Fault("status", status=404, path="^/api/graphql$", times=None))
    h = start_harness(
        sample,
        gitlab_sim,
        slack,
        sqlite_url,
        generate_key(),
        mirrorbot_poll_interval=1,
        mirrorbot_recheck_every=1000,
    )
    try:
        h.link("UALICE", ALICE_TOKEN)
        h.command("watch group/app", channel="CALERTS")
        h.wait_response("now gets alerts")
        h.wait(lambda: h.read(select(MirrorPresence)), timeout=10)  # a scan learned
        since = len(gitlab_sim.requests.entries)
        world.set_outcome(pull, "fatal: could not read Username for 'https://up.example.org'")
        world.force_pull(pull, world.clock())
        alert = json.dumps(h.wait_post("Mirror failing", timeout=10))
        assert "up.example.org" in alert and "pw@" not in alert
        world.set_outcome(pull, None)
        world.force_pull(pull, world.clock())
        h.wait_post("Recovered", timeout=10)
        later = gitlab_sim.requests.entries[since:]
    finally:
        h.server.stop()
    rest_reads = [r for r in later if r.path.endswith("/mirror/pull")]
    graphql_reads = [r for r in later if r.path == "/api/graphql"]
    assert graphql_reads
    if graphql == "answers":
        assert rest_reads == [] and {r.status for r in graphql_reads} == {200}
    else:
        assert rest_reads and {r.status for r in graphql_reads} == {404}


def test_an_alert_survives_slack_rate_limiting(watching: Harness):
    watching.slack.rate_limit("chat.postMessage", times=2, retry_after=1)
    watching.sample.world.fail_now(watching.sample.https_mirror, AUTH_ERROR)
    send_webhook(watching, push_event(watching))
    watching.wait_post("Mirror failing", timeout=10)
    watching.settle()
    limited = [c for c in watching.slack.calls if c.status == 429]
    assert len(limited) == 2
    assert len(alerts(watching)) == 1


def test_an_alert_survives_a_restart_between_failure_and_delivery(
    sample, gitlab_sim, slack, sqlite_url
):
    key = generate_key()
    first = start_harness(
        sample,
        gitlab_sim,
        slack,
        sqlite_url,
        key,
        gitlab_webhook_secret=WEBHOOK_SECRET,
        mirrorbot_poll_interval=3600,
    )
    first.link("UALICE", ALICE_TOKEN)
    first.command("watch group/app", channel="CALERTS")
    first.wait_response("now gets alerts")
    slack.down("chat.postMessage", times=10_000)  # Slack is down: the alert waits
    sample.world.fail_now(sample.https_mirror, AUTH_ERROR)
    send_webhook(first, push_event(first))
    first.wait(
        lambda: any(c.method == "chat.postMessage" and c.status == 503 for c in slack.calls),
        timeout=10,
    )
    first.server.stop()
    slack.clear_faults()  # Slack is back
    second = start_harness(
        sample,
        gitlab_sim,
        slack,
        sqlite_url,
        key,
        gitlab_webhook_secret=WEBHOOK_SECRET,
        mirrorbot_poll_interval=3600,
    )
    try:
        second.wait_post("Mirror failing", timeout=40)
        second.settle()
        assert len(alerts(second)) == 1
    finally:
        second.server.stop()
