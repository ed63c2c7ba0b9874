"""Prometheus metrics, defined once per process (prometheus-client's default registry)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:  # the GitLab client imports this module
    from bot.domain.subscriptions import MirrorObservation

HTTP_REQUESTS = Counter(
    "mirrorbot_http_requests_total",
    "Requests served, by route and status code",
    ["route", "status"],
)
SLACK_HANDLER_OUTCOMES = Counter(
    "mirrorbot_slack_handler_total", "Slack listener runs by kind and outcome", ["kind", "outcome"]
)
GITLAB_LATENCY = Histogram(
    "mirrorbot_gitlab_request_seconds",
    "GitLab API call latency by route family and method",
    ["route", "method"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
GITLAB_ERRORS = Counter(
    "mirrorbot_gitlab_errors_total", "GitLab API errors by status (0: no answer)", ["status"]
)
ALERTS_POSTED = Counter("mirrorbot_alerts_posted_total", "Failure alerts posted in Slack")
ALERTS_RESOLVED = Counter("mirrorbot_alerts_resolved_total", "Recoveries posted in Slack")
OUTBOX_DEPTH = Gauge("mirrorbot_outbox_depth", "Slack messages waiting in the outbox")
INBOX_DEPTH = Gauge("mirrorbot_inbox_depth", "Webhook events not processed yet")
MONITOR_CYCLE = Histogram(
    "mirrorbot_monitor_cycle_seconds",
    "Duration of one scan of every watched project",
    buckets=(1, 5, 10, 30, 60, 120, 300, 600),
)
SLACK_TOKEN_REJECTED = Gauge(
    "mirrorbot_slack_token_rejected",
    "1 while Slack rejects the bot token (invalid_auth, account_inactive, …): nothing is posted",
)
OUTBOX_GIVEN_UP = Counter(
    "mirrorbot_outbox_given_up_total",
    "Slack messages dropped because Slack refused them for good, by Slack's error",
    ["error"],
)
PROJECTS_NOT_CHECKED = Gauge(
    "mirrorbot_projects_not_checked",
    "Watched projects the monitor could not check in its last look, by problem",
    ["problem"],
)
BACKGROUND_PASSES = Counter(
    "mirrorbot_background_passes_total",
    "Passes of each background loop (outbox, inbox, checks, monitor, approvals), done or failed",
    ["loop"],
)
BACKGROUND_FAILURES = Counter(
    "mirrorbot_background_failures_total",
    "Passes of a background loop that raised; the loop goes on with its next pass",
    ["loop"],
)
SLACK_REPLAY_CHECKS_FAILED = Counter(
    "mirrorbot_slack_replay_checks_failed_total",
    "Slack requests whose signature could not be recorded (the database failed twice): "
    "their work ran on this replica's own replay check alone",
)
SLACK_REPLAYS_REFUSED = Counter(
    "mirrorbot_slack_replays_refused_total",
    "Slack requests whose work was dropped: their signature was used before",
)
CLOCK_SKEW = Gauge(
    "mirrorbot_clock_skew_seconds",
    "The database's clock minus this host's (replicas compare claims written by each other)",
)
MONITOR_LEADER = Gauge(
    "mirrorbot_monitor_leader", "1 while this replica holds the monitor's lease, else 0"
)


MIRROR_LABELS = ["project", "mirror", "direction", "host"]


class MirrorObservations(Collector):
    """Per-mirror gauges from the monitor's observations, read once per scrape by the
    /metrics route: a scrape never calls GitLab. Labels carry the host, never userinfo."""

    def __init__(self, mirrors: Sequence[MirrorObservation]) -> None:
        self._mirrors = mirrors

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "mirrorbot_mirror_up",
            "1 when the mirror is ok, 0 while it is failing",
            labels=MIRROR_LABELS,
        )
        enabled = GaugeMetricFamily(
            "mirrorbot_mirror_enabled", "1 when the mirror is enabled", labels=MIRROR_LABELS
        )
        last_success = GaugeMetricFamily(
            "mirrorbot_mirror_last_success_timestamp_seconds",
            "When the mirror last updated successfully (absent if it never did)",
            labels=MIRROR_LABELS,
        )
        failing_since = GaugeMetricFamily(
            "mirrorbot_mirror_failing_since_timestamp_seconds",
            "When the current failure began; 0 while the mirror is ok",
            labels=MIRROR_LABELS,
        )
        failed_checks = GaugeMetricFamily(
            "mirrorbot_mirror_consecutive_failed_checks",
            "Checks in a row that saw the mirror failing",
            labels=MIRROR_LABELS,
        )
        for mirror in self._mirrors:
            labels = [
                mirror.project_path,
                str(mirror.mirror_id) if mirror.mirror_id is not None else "pull",
                mirror.direction,
                mirror.host,
            ]
            failing = mirror.is_failing
            up.add_metric(labels, 0 if failing else 1)
            enabled.add_metric(labels, 1 if mirror.enabled else 0)
            if mirror.last_successful_update_at is not None:
                last_success.add_metric(labels, mirror.last_successful_update_at.timestamp())
            since = mirror.failing_since if failing and mirror.failing_since else None
            failing_since.add_metric(labels, since.timestamp() if since else 0)
            failed_checks.add_metric(labels, mirror.failed_checks)
        yield from (up, enabled, last_success, failing_since, failed_checks)
