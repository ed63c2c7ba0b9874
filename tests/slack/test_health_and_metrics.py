"""/healthz reports the database; /metrics exposes what an operator watches."""

import httpx

from bot.store.db import create_engine
from tests.slack.conftest import Harness


def test_healthz_is_503_when_the_database_is_unreachable(harness: Harness):
    assert httpx.get(f"{harness.server.url}/healthz").status_code == 200
    services = harness.server.services
    working = services.engine
    services.engine = create_engine("postgresql://nobody@127.0.0.1:1/none")
    try:
        response = httpx.get(f"{harness.server.url}/healthz")
        assert response.status_code == 503
        assert response.json()["database"] == "unreachable"
    finally:
        services.engine = working


def test_metrics_cover_requests_gitlab_alerts_and_queues(linked: Harness):
    linked.command("list group/app")
    linked.wait_response("2 push mirrors")
    httpx.get(f"{linked.server.url}/healthz")
    httpx.get(f"{linked.server.url}/wp-login.php")  # a scanner's path: not a label of its own
    text = httpx.get(f"{linked.server.url}/metrics").text
    for name in (
        "mirrorbot_http_requests_total",
        "mirrorbot_slack_handler_total",
        "mirrorbot_gitlab_request_seconds_bucket",
        "mirrorbot_gitlab_errors_total",
        "mirrorbot_alerts_posted_total",
        "mirrorbot_alerts_resolved_total",
        "mirrorbot_outbox_depth",
        "mirrorbot_inbox_depth",
        "mirrorbot_monitor_cycle_seconds",
        "mirrorbot_background_passes_total",
    ):
        assert name in text, name
    assert 'mirrorbot_http_requests_total{route="/slack/events",status="200"}' in text
    assert 'mirrorbot_http_requests_total{route="/healthz",status="200"}' in text
    assert 'mirrorbot_http_requests_total{route="other",status="404"}' in text
    assert "wp-login" not in text
    assert 'route="push_mirror"' in text
