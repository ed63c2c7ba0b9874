"""Every way delivering an alert or checking a mirror can fail, reached through the running
app with the Slack stand-in's and the simulator's fault injection."""

from dataclasses import replace
from datetime import timedelta

import pytest
import sqlalchemy
from sqlalchemy import select

from bot.domain.outbox import OutboxRetry
from bot.domain.subscriptions import push_key
from bot.simulator import Fault
from bot.store.crypto import generate_key
from bot.store.db import sync_url
from bot.store.models import OutboxMessage
from tests.conftest import ALICE_TOKEN, MAINTAINER
from tests.fakes.bot_server import FAST_WORKERS
from tests.fakes.slack import DROPPED
from tests.slack.conftest import Harness, start_harness
from tests.slack.test_alerts_e2e import (
    AUTH_ERROR,
    WEBHOOK_SECRET,
    alert_calls,
    push_event,
    send_webhook,
)

MAX_ATTEMPTS = 3
# Three quick tries, so that giving up takes a fraction of a second, not hours.
QUICK_GIVE_UP = replace(
    FAST_WORKERS,
    outbox_retry=OutboxRetry(
        max_attempts=MAX_ATTEMPTS,
        first_backoff=timedelta(seconds=0.05),
        max_backoff=timedelta(seconds=0.1),
    ),
)


def watching_harness(sample, gitlab_sim, slack, sqlite_url, **extra) -> Harness:
    h = start_harness(
        sample,
        gitlab_sim,
        slack,
        sqlite_url,
        generate_key(),
        timing=QUICK_GIVE_UP,
        gitlab_webhook_secret=WEBHOOK_SECRET,
        **{"mirrorbot_poll_interval": 3600, **extra},
    )
    h.link("UALICE", ALICE_TOKEN)
    h.command("watch group/app", channel="CALERTS")
    h.wait_response("now gets alerts")
    return h


@pytest.fixture
def watching(sample, gitlab_sim, slack, sqlite_url):
    h = watching_harness(sample, gitlab_sim, slack, sqlite_url)
    yield h
    h.server.stop()


@pytest.fixture
def scanning(sample, gitlab_sim, slack, sqlite_url):
    """The monitor scans every second; no webhooks needed."""
    h = watching_harness(sample, gitlab_sim, slack, sqlite_url, mirrorbot_poll_interval=1)
    yield h
    h.server.stop()


def outbox(h: Harness) -> dict[str, str]:
    """Outbox message kind → status."""
    return {row.method: row.status for row in h.read(select(OutboxMessage))}


def posts_of(h: Harness, method: str, status: int) -> list:
    return [c for c in h.slack.calls if c.method == method and c.status == status]


# --- Slack -----------------------------------------------------------------------------


def test_the_outbox_gives_up_after_its_maximum_attempts(watching: Harness):
    watching.slack.down("chat.postMessage", times=10_000)
    watching.sample.world.fail_now(watching.sample.https_mirror, AUTH_ERROR)
    send_webhook(watching, push_event(watching))
    watching.wait(lambda: outbox(watching).get("alert") == "failed")
    watching.settle()
    watching.one_more_pass("outbox")  # and it stays given up
    assert len(posts_of(watching, "chat.postMessage", 503)) == MAX_ATTEMPTS
    [row] = watching.read(select(OutboxMessage))
    assert row.attempts == MAX_ATTEMPTS and row.last_error == "service_unavailable"


def test_replies_to_an_alert_that_was_never_posted_are_given_up_not_posted_alone(
    watching: Harness,
):
    world, mirror = watching.sample.world, watching.sample.https_mirror
    watching.slack.down("chat.postMessage", times=10_000)
    world.fail_now(mirror, AUTH_ERROR)
    send_webhook(watching, push_event(watching))
    watching.wait(lambda: outbox(watching).get("alert") == "failed")
    watching.slack.clear_faults()  # Slack is back, but the alert is gone for good
    world.set_outcome(mirror, None)
    world.push(watching.sample.app)  # the mirror recovers
    send_webhook(watching, push_event(watching))
    watching.wait(lambda: len(outbox(watching)) == 3)  # the recovery and the edit are queued
    watching.settle()
    assert outbox(watching) == {
        "alert": "failed",
        "alert_recovery": "failed",
        "alert_update": "failed",
    }
    assert watching.posts("chat.postMessage") == [] and watching.posts("chat.update") == []


def test_an_alert_gets_through_connections_slack_drops(watching: Harness):
    # The Web API client retries a dropped connection once itself; two drops in a row
    # reach the outbox's own retry.
    watching.slack.drop("chat.postMessage", times=2)
    watching.sample.world.fail_now(watching.sample.https_mirror, AUTH_ERROR)
    send_webhook(watching, push_event(watching))
    watching.wait_post("Mirror failing")
    watching.settle()
    assert len(posts_of(watching, "chat.postMessage", DROPPED)) == 2
    assert len(alert_calls(watching)) == 1
    [row] = watching.read(select(OutboxMessage))
    assert row.status == "sent" and row.attempts == 1  # one attempt failed, then sent


def test_a_failed_chat_update_is_retried_and_edits_the_alert(watching: Harness):
    world, mirror = watching.sample.world, watching.sample.https_mirror
    world.fail_now(mirror, AUTH_ERROR)
    send_webhook(watching, push_event(watching))
    watching.wait_post("Mirror failing")
    [alert] = alert_calls(watching)
    watching.slack.down("chat.update", times=1)
    world.set_outcome(mirror, None)
    world.push(watching.sample.app)
    send_webhook(watching, push_event(watching))
    resolved = watching.wait_post("Resolved: the mirror recovered", method="chat.update")
    watching.settle()
    assert resolved["ts"] == alert.ts
    [refused] = posts_of(watching, "chat.update", 503)
    assert refused.body["ts"] == alert.ts
    assert len(watching.posts("chat.update")) == 1


# --- GitLab ----------------------------------------------------------------------------


def test_a_gitlab_fault_during_a_scan_changes_no_alert_and_the_scan_goes_on(
    scanning: Harness,
):
    sample, world = scanning.sample, scanning.sample.world
    lib = world.add_project("group/lib", {sample.alice: MAINTAINER})
    lib_mirror = world.add_push_mirror(lib, "https://github.example.org/acme/lib.git", enabled=True)
    scanning.command("watch group/lib", channel="CALERTS")
    scanning.wait_response("group/lib")
    world.fail_now(sample.https_mirror, AUTH_ERROR)
    scanning.wait_post("Mirror failing", timeout=10)
    # GitLab errs on group/app's push mirrors, which meanwhile recovered...
    fault = scanning.gitlab.inject(
        Fault("status", status=500, path=f"^/projects/{sample.app.id}/remote_mirrors", times=None)
    )
    world.set_outcome(sample.https_mirror, None)
    world.push(sample.app)
    # ...while a mirror of group/lib starts failing: the same scans still see it.
    world.fail_now(lib_mirror, AUTH_ERROR)
    scanning.wait(lambda: len(alert_calls(scanning)) == 2, timeout=10)
    scanning.one_more_pass("monitor")  # one more whole scan with the fault
    assert fault.hits > 0
    assert scanning.posts("chat.update") == []  # the unreadable mirror was not resolved
    seen = scanning.observation(sample.app.id, push_key(sample.https_mirror.id))
    assert seen is not None and seen.alert_state == "failing"
    scanning.gitlab.faults.clear()
    scanning.wait_post("Recovered", timeout=10)


def test_a_gitlab_fault_during_a_due_check_changes_no_alert_and_the_next_check_does(
    watching: Harness,
):
    world, mirror = watching.sample.world, watching.sample.https_mirror
    world.fail_now(mirror, AUTH_ERROR)
    send_webhook(watching, push_event(watching))
    watching.wait_post("Mirror failing")
    fault = watching.gitlab.inject(Fault("drop", path="remote_mirrors", times=None))
    world.set_outcome(mirror, None)
    world.push(watching.sample.app)  # it recovers, but its checks cannot read it
    send_webhook(watching, push_event(watching))
    watching.settle()  # both checks the push scheduled ran into the fault
    assert fault.hits > 0
    assert watching.posts("chat.update") == [] and len(watching.posts()) == 1
    seen = watching.observation(watching.sample.app.id, push_key(mirror.id))
    assert seen is not None and seen.alert_state == "failing"
    watching.gitlab.faults.clear()
    send_webhook(watching, push_event(watching))
    watching.wait_post("Recovered")


# --- the loops themselves --------------------------------------------------------------


def test_a_background_loop_that_raises_is_run_again(watching: Harness, caplog):
    """The database loses the table of scheduled checks for a while: the inbox and checks
    loops raise on every pass, and once it is back they carry on where they were."""
    engine = sqlalchemy.create_engine(sync_url(watching.settings.database_url))
    failures = {
        loop: watching.metric("mirrorbot_background_failures_total", loop=loop)
        for loop in ("inbox", "checks")
    }
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("ALTER TABLE scheduled_checks RENAME TO scheduled_away")
        watching.sample.world.fail_now(watching.sample.https_mirror, AUTH_ERROR)
        assert send_webhook(watching, push_event(watching)).json() == {"status": "stored"}
        for loop, before in failures.items():
            watching.wait(
                lambda loop=loop, before=before: (
                    watching.metric("mirrorbot_background_failures_total", loop=loop) >= before + 2
                )  # it failed, and was run again, and failed again
            )
        assert alert_calls(watching) == []
    finally:
        with engine.begin() as connection:
            connection.exec_driver_sql("ALTER TABLE scheduled_away RENAME TO scheduled_checks")
        engine.dispose()
    watching.wait_post("Mirror failing")  # the stored push was processed after all
    assert "background loop inbox failed" in caplog.text
    assert "background loop checks failed" in caplog.text
