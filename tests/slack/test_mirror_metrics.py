"""Per-mirror Prometheus metrics from the monitor's observations."""

from datetime import UTC, datetime

import httpx
import pytest

from tests.slack.conftest import Harness
from tests.slack.test_alerts_e2e import AUTH_ERROR, push_event, send_webhook


@pytest.fixture
def harness(webhook_harness: Harness) -> Harness:
    return webhook_harness


def test_the_mirror_metrics_move_with_a_failure_and_a_recovery(linked: Harness):
    h, world, mirror = linked, linked.sample.world, linked.sample.https_mirror
    labels = {
        "project": "group/app",
        "mirror": str(mirror.id),
        "direction": "push",
        "host": "github.example.org",
    }
    world.succeed_at(mirror, datetime(2026, 11, 30, 8, 0, tzinfo=UTC))
    h.command("watch group/app", channel="CALERTS")
    h.wait_response("now gets alerts")
    send_webhook(h, push_event(h))
    h.wait(lambda: h.metric("mirrorbot_mirror_enabled", **labels) == 1)
    assert h.metric("mirrorbot_mirror_up", **labels) == 1
    assert h.metric("mirrorbot_mirror_last_success_timestamp_seconds", **labels) == (
        datetime(2026, 11, 30, 8, 0, tzinfo=UTC).timestamp()
    )
    assert h.metric("mirrorbot_mirror_failing_since_timestamp_seconds", **labels) == 0

    world.fail_now(mirror, AUTH_ERROR)
    failed_at = mirror.last_update_at
    send_webhook(h, push_event(h))
    h.wait_post("Mirror failing")
    assert h.metric("mirrorbot_mirror_up", **labels) == 0
    assert h.metric("mirrorbot_mirror_failing_since_timestamp_seconds", **labels) == (
        pytest.approx(failed_at.timestamp(), abs=0.001)
    )
    assert h.metric("mirrorbot_mirror_consecutive_failed_checks", **labels) >= 1
    before = h.metric("mirrorbot_mirror_consecutive_failed_checks", **labels)
    send_webhook(h, push_event(h))
    h.wait(lambda: h.metric("mirrorbot_mirror_consecutive_failed_checks", **labels) > before)

    world.set_outcome(mirror, None)
    world.push(h.sample.app)
    send_webhook(h, push_event(h))
    h.wait_post("Recovered")
    assert h.metric("mirrorbot_mirror_up", **labels) == 1
    assert h.metric("mirrorbot_mirror_failing_since_timestamp_seconds", **labels) == 0
    assert h.metric("mirrorbot_mirror_consecutive_failed_checks", **labels) == 0
    assert h.metric("mirrorbot_mirror_last_success_timestamp_seconds", **labels) > (
        datetime(2026, 11, 30, 8, 0, tzinfo=UTC).timestamp()
    )


def test_mirror_metrics_never_carry_userinfo(linked: Harness):
    linked.command("watch group/app", channel="CALERTS")
    linked.wait_response("now gets alerts")
    send_webhook(linked, push_event(linked))
    linked.wait(lambda: linked.metric("mirrorbot_mirror_enabled", host="github.example.org") == 1)
    text = httpx.get(f"{linked.server.url}/metrics").text
    assert "s3cr3t" not in text and "mirror-bot" not in text and "*****" not in text
    assert 'host="ssh.example.org"' in text
