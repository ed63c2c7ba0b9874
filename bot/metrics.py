"""Prometheus metrics, defined once per process (prometheus-client's default registry)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
MONITOR_LEADER = Gauge(
    "mirrorbot_monitor_leader", "1 while this replica holds the monitor's lease, else 0"
)
