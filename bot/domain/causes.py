"""The likely cause of a mirror failure, recognised from GitLab's `last_error`, with a fix.

Table-driven: the first rule whose pattern matches wins. Patterns come from real git,
Gitaly and GitLab error texts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Cause:
    key: str
    title: str
    fix: str


AUTHENTICATION = Cause(
    "authentication",
    "Authentication failed",
    "The credentials for the target were refused: renew the token or password (or re-add "
    "the deploy key), then `/mirror rotate` re-creates the mirror with them, every setting "
    "kept.",
)
HOST_KEY = Cause(
    "host_key",
    "Host key changed or unknown",
    "The target's SSH host key does not match: verify the new fingerprint with its owners, "
    "then re-create the mirror (`/mirror rotate`) so that GitLab detects the new host keys.",
)
DIVERGED = Cause(
    "diverged",
    "Diverged refs (non-fast-forward)",
    "The target has commits the source does not: reconcile the branches on the target, or "
    "enable 'Keep divergent refs' to skip them.",
)
PROTECTED = Cause(
    "protected",
    "Rejected by the target's branch protection or hooks",
    "The target refused the push (protected branch or pre-receive hook): allow the mirror's "
    "user to push there, or narrow the mirrored branches.",
)
NOT_FOUND = Cause(
    "not_found",
    "Target repository not found or not accessible",
    "Check that the target repository exists and that the mirror's credentials can write to "
    "it; the URL cannot be edited, so re-create the mirror if it moved.",
)
NETWORK = Cause(
    "network",
    "Timeout or network error",
    "GitLab could not reach the target: check the host is up and reachable from GitLab; "
    "the next sync retries automatically.",
)
INVALID_URL = Cause(
    "invalid_url",
    "The mirror URL is blocked or invalid",
    "GitLab refuses this URL (local network, bad scheme or unresolvable host): re-create the "
    "mirror with a public http(s), ssh or git URL.",
)
STUCK = Cause(
    "stuck",
    "Stuck: the update has been running for too long",
    "GitLab considers a push mirror update stuck after 1 h (3 h for a first sync), and a "
    "sync while it shows `started` does nothing: disable and re-enable the mirror, or ask "
    "a GitLab admin to look at its Sidekiq jobs.",
)
STOPPED = Cause(
    "stopped",
    "Stopped: GitLab gave up retrying after repeated failures",
    "Start a pull to resume (Pull sync); if GitLab answers that mirroring is on pause, use "
    "Update now in the project's mirroring settings or save its pull configuration again.",
)
UNKNOWN = Cause(
    "unknown",
    "Unrecognised error",
    "Read the error below; `/mirror show` has the mirror's full settings.",
)

_RULES: list[tuple[re.Pattern[str], Cause]] = [
    (re.compile(p, re.IGNORECASE), cause)
    for p, cause in [
        (r"remote mirror url is invalid|is blocked:|only allowed schemes", INVALID_URL),
        (
            r"host key verification failed|remote host identification has changed|"
            r"no matching host key|host key .*(changed|mismatch|not match)|known_hosts",
            HOST_KEY,
        ),
        (
            r"some refs have diverged|non-fast-forward|\(fetch first\)|updates were rejected "
            r"because|failed to push some refs.*rejected|\[rejected\]",
            DIVERGED,
        ),
        (
            r"protected branch|pre-receive hook declined|gh006|\[remote rejected\]|"
            r"you are not allowed to (push|force push)",
            PROTECTED,
        ),
        (
            r"authentication failed|could not read username|invalid username or password|"
            r"permission denied \(publickey|http basic: access denied|\b401\b|bad credentials|"
            r"invalid credentials|access token (has )?expired|access denied",
            AUTHENTICATION,
        ),
        (
            r"repository not found|does not appear to be a git repository|not found\b.*\.git|"
            r"\b404\b|could not read from remote repository|project you were looking for could "
            r"not be found",
            NOT_FOUND,
        ),
        (
            r"timed? ?out|timeout|could not resolve host|connection (refused|reset)|"
            r"network is unreachable|no route to host|temporary failure in name resolution|"
            r"early eof|the remote end hung up|ssl_error|tls",
            NETWORK,
        ),
    ]
]


def classify(last_error: str | None) -> Cause:
    if not last_error:
        return UNKNOWN
    for pattern, cause in _RULES:
        if pattern.search(last_error):
            return cause
    return UNKNOWN


_CAUSES = {
    cause.key: cause
    for cause in (
        AUTHENTICATION,
        HOST_KEY,
        DIVERGED,
        PROTECTED,
        NOT_FOUND,
        NETWORK,
        INVALID_URL,
        STUCK,
        STOPPED,
    )
}


def cause_named(key: str | None) -> Cause | None:
    """The cause an alert payload names (payloads outlive this process)."""
    return _CAUSES.get(key or "")


# GitLab's own limits (app/models/remote_mirror.rb): past these a `started` update is stuck.
PUSH_STUCK_AFTER = timedelta(hours=1)
FIRST_PUSH_STUCK_AFTER = timedelta(hours=3)
# A failing pull mirror is retried with a back-off capped at `mirror_max_delay` (5 h by
# default); after 14 failures GitLab stops scheduling it. The pull API does not say so,
# so a failure with no attempt for longer than the cap means GitLab stopped retrying.
PULL_STOPPED_AFTER = timedelta(hours=6)


def push_is_stuck(
    update_status: str,
    started_at: datetime | None,
    last_success: datetime | None,
    now: datetime,
) -> bool:
    if update_status != "started" or started_at is None:
        return False
    limit = PUSH_STUCK_AFTER if last_success is not None else FIRST_PUSH_STUCK_AFTER
    return now - started_at > limit


def pull_is_stopped(update_status: str, last_attempt: datetime | None, now: datetime) -> bool:
    return (
        update_status == "failed"
        and last_attempt is not None
        and now - last_attempt > PULL_STOPPED_AFTER
    )
