"""Stuck push mirrors and pull mirrors GitLab stopped retrying alert and recover."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.slack.conftest import Harness
from tests.slack.test_alerts_e2e import alert_calls, push_event, send_webhook


@pytest.fixture
def harness(webhook_harness: Harness) -> Harness:
    return webhook_harness


@pytest.fixture
def watching(linked: Harness) -> Harness:
    linked.command("watch group/app", channel="CALERTS")
    linked.wait_response("now gets alerts")
    return linked


def buttons(alert: dict) -> list[str]:
    return [
        e["text"]["text"] for b in alert["blocks"] if b["type"] == "actions" for e in b["elements"]
    ]


def test_a_push_mirror_started_over_an_hour_ago_alerts_as_stuck_and_recovers(watching: Harness):
    world, mirror = watching.sample.world, watching.sample.https_mirror
    now = datetime.now(UTC)
    world.succeed_at(mirror, now - timedelta(hours=3))
    world.stick(mirror, now - timedelta(minutes=61))
    send_webhook(watching, push_event(watching))
    alert = watching.wait_post("Mirror failing")
    assert "Likely cause: Stuck" in json.dumps(alert)
    [call] = alert_calls(watching)
    world.succeed_at(mirror, datetime.now(UTC))  # the update finally went through
    send_webhook(watching, push_event(watching))
    reply = watching.wait_post("Recovered")
    assert reply["thread_ts"] == call.ts


def test_a_first_sync_is_stuck_only_after_three_hours(watching: Harness):
    world = watching.sample.world
    https, ssh = watching.sample.https_mirror, watching.sample.ssh_mirror
    now = datetime.now(UTC)
    world.stick(https, now - timedelta(hours=2))  # never succeeded: 2 h is not stuck yet
    world.stick(ssh, now - timedelta(hours=3, minutes=1))
    send_webhook(watching, push_event(watching))
    watching.wait_post("Mirror failing")
    watching.settle()
    [alert] = alert_calls(watching)
    assert "ssh.example.org" in json.dumps(alert.body)
    assert watching.observation(watching.sample.app.id, f"push:{https.id}").alert_state == "ok"


def test_a_pull_mirror_gitlab_stopped_retrying_alerts_with_pull_sync(watching: Harness):
    world, app = watching.sample.world, watching.sample.app
    pull = world.set_pull_mirror(app, "https://u:p@up.example.org/a.git")
    now = datetime.now(UTC)
    world.succeed_at(pull, now - timedelta(days=2))
    world.pause_pull(pull, "fatal: could not read from upstream", now - timedelta(hours=7))
    send_webhook(watching, push_event(watching))
    alert = watching.wait_post("Mirror failing")
    text = json.dumps(alert)
    assert "Stopped: GitLab gave up retrying" in text and "start a pull to resume" in text.lower()
    assert buttons(alert)[0] == "Pull sync"
    world.succeed_at(pull, datetime.now(UTC))  # resumed from GitLab's settings page
    send_webhook(watching, push_event(watching))
    watching.wait_post("Recovered")


def test_a_pull_mirror_failing_recently_is_still_being_retried(watching: Harness):
    world, app = watching.sample.world, watching.sample.app
    pull = world.set_pull_mirror(app, "https://u:p@up.example.org/a.git")
    world.succeed_at(pull, datetime.now(UTC) - timedelta(days=2))
    world.pause_pull(pull, "fatal: could not read from upstream", datetime.now(UTC))
    send_webhook(watching, push_event(watching))
    alert = watching.wait_post("Mirror failing")
    assert "Stopped" not in json.dumps(alert) and buttons(alert)[0] == "Retry sync"
