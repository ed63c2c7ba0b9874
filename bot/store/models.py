"""SQLAlchemy models. Secrets are stored only as Fernet ciphertext (`*_ciphertext`)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on every backend (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware UTC")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON,
        date: Date,
    }


class LinkedAccount(Base):
    """A Slack user linked to a GitLab account through their own personal access token."""

    __tablename__ = "linked_accounts"
    __table_args__ = (UniqueConstraint("slack_team_id", "slack_user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slack_team_id: Mapped[str] = mapped_column(String(32))
    slack_user_id: Mapped[str] = mapped_column(String(32))
    gitlab_user_id: Mapped[int] = mapped_column(BigInteger)
    gitlab_username: Mapped[str] = mapped_column(String(255))
    token_ciphertext: Mapped[str] = mapped_column(Text)
    token_scopes: Mapped[str] = mapped_column(String(255), default="")  # comma-separated
    token_expires_at: Mapped[date | None]
    linked_by: Mapped[str] = mapped_column(String(64))
    linked_at: Mapped[datetime] = mapped_column(default=utcnow)
    # "pat": `token_ciphertext` is a personal access token. "oauth": it is an OAuth access
    # token valid until `access_expires_at`, renewed with the refresh token (both rotate
    # on each refresh); `broken_at` once GitLab refused the refresh token.
    link_kind: Mapped[str] = mapped_column(String(8), default="pat", server_default="pat")
    refresh_token_ciphertext: Mapped[str | None] = mapped_column(Text)
    access_expires_at: Mapped[datetime | None]
    broken_at: Mapped[datetime | None]


class DeviceLogin(Base):
    """A `/mirror login` through GitLab's device grant: pending → linked | denied |
    expired | failed; the person is told once (`notified_at`)."""

    __tablename__ = "device_logins"
    __table_args__ = (Index("ix_device_logins_state_next_poll_at", "state", "next_poll_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slack_team_id: Mapped[str] = mapped_column(String(32))
    slack_user_id: Mapped[str] = mapped_column(String(32))
    channel_id: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default="pending")
    device_code_ciphertext: Mapped[str] = mapped_column(Text)
    user_code: Mapped[str] = mapped_column(String(32))
    verification_uri_complete: Mapped[str] = mapped_column(Text)
    # Where the login message is updated: a Slack response_url grants posting, so secret.
    response_url_ciphertext: Mapped[str | None] = mapped_column(Text)
    interval_seconds: Mapped[float] = mapped_column(Double)
    next_poll_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(255))  # what the person is told
    notified_at: Mapped[datetime | None]


class Subscription(Base):
    """A channel that receives a project's mirror alerts."""

    __tablename__ = "subscriptions"
    __table_args__ = (UniqueConstraint("channel_id", "project_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slack_team_id: Mapped[str] = mapped_column(String(32))
    channel_id: Mapped[str] = mapped_column(String(32), index=True)
    project_id: Mapped[int] = mapped_column(BigInteger, index=True)
    project_path: Mapped[str] = mapped_column(String(1024))
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    channel_name: Mapped[str | None] = mapped_column(String(255))  # as Slack named it
    # Set when Slack refused a post for good (archived, deleted, bot removed); a new
    # `watch` into a working channel clears it.
    broken_at: Mapped[datetime | None]
    broken_reason: Mapped[str | None] = mapped_column(String(64))  # Slack's error code
    # The group subscription that added this project; None for a direct `watch P`.
    group_subscription_id: Mapped[int | None] = mapped_column(Integer, index=True)


class GroupSubscription(Base):
    """A channel watching every project of a GitLab group and its subgroups, now and later."""

    __tablename__ = "group_subscriptions"
    __table_args__ = (UniqueConstraint("channel_id", "group_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slack_team_id: Mapped[str] = mapped_column(String(32))
    channel_id: Mapped[str] = mapped_column(String(32))
    group_id: Mapped[int] = mapped_column(BigInteger)
    group_path: Mapped[str] = mapped_column(String(1024))
    created_by: Mapped[str] = mapped_column(String(32))  # whose token discovery reads with
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    discovered_at: Mapped[datetime | None]
    # Why discovery cannot list the group with that token (None: it can), and since when:
    # the channel is told once per such episode.
    problem: Mapped[str | None] = mapped_column(Text)
    problem_since: Mapped[datetime | None]


class Digest(Base):
    """A channel's daily health digest: when, in which time zone, and the last day sent."""

    __tablename__ = "digests"

    channel_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    slack_team_id: Mapped[str] = mapped_column(String(32))
    at_time: Mapped[str] = mapped_column(String(5))  # HH:MM
    timezone: Mapped[str] = mapped_column(String(64))
    always: Mapped[bool] = mapped_column(default=False)
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_sent_on: Mapped[date | None]


class Mute(Base):
    """One mirror silenced in one channel until `muted_until`."""

    __tablename__ = "mutes"
    __table_args__ = (UniqueConstraint("channel_id", "project_id", "mirror_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(32))
    project_id: Mapped[int] = mapped_column(BigInteger)
    mirror_key: Mapped[str] = mapped_column(String(32))  # "push:<id>" or "pull"
    muted_until: Mapped[datetime]
    muted_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApprovalRequest(Base):
    """An operation waiting for a second person. Status changes are single atomic UPDATEs."""

    __tablename__ = "approval_requests"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    slack_team_id: Mapped[str] = mapped_column(String(32))
    channel_id: Mapped[str] = mapped_column(String(32))
    message_ts: Mapped[str | None] = mapped_column(String(32))
    requester_id: Mapped[str] = mapped_column(String(32))
    # Four eyes means two GitLab users, not two Slack accounts (which may share one).
    requester_gitlab_user_id: Mapped[int | None] = mapped_column(BigInteger)
    operation: Mapped[str] = mapped_column(String(32))
    project_id: Mapped[int | None] = mapped_column(BigInteger)
    project_path: Mapped[str] = mapped_column(String(1024))
    mirror_id: Mapped[int | None] = mapped_column(BigInteger)
    mirror_url: Mapped[str | None] = mapped_column(Text)  # scrubbed
    # Operation parameters as encrypted JSON: pull-mirror configuration carries a password.
    params_ciphertext: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), index=True)
    # What the change sets, as the card shows it (scrubbed, never a secret).
    changes: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    needs_approval_of: Mapped[str | None] = mapped_column(String(255))  # comma-separated
    approver_id: Mapped[str | None] = mapped_column(String(32))
    approver_gitlab_user_id: Mapped[int | None] = mapped_column(BigInteger)
    result: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
    # An approved request is being run until then; after it, the runner is presumed dead.
    running_until: Mapped[datetime | None]


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[str] = mapped_column(String(64))
    event: Mapped[str] = mapped_column(String(16))  # requested, approved, executed, …
    operation: Mapped[str] = mapped_column(String(32))
    project: Mapped[str | None] = mapped_column(String(1024), index=True)
    mirror_id: Mapped[int | None] = mapped_column(BigInteger)
    result: Mapped[str | None] = mapped_column(Text)
    approver_id: Mapped[str | None] = mapped_column(String(32))
    request_id: Mapped[str | None] = mapped_column(String(36))
    channel_id: Mapped[str | None] = mapped_column(String(32))  # where it was done
    subject_id: Mapped[str | None] = mapped_column(String(64))  # the Slack user it concerns


class MirrorState(Base):
    """The monitor's latest observation of one mirror and its alert state machine."""

    __tablename__ = "mirror_states"
    __table_args__ = (UniqueConstraint("project_id", "mirror_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(BigInteger, index=True)
    project_path: Mapped[str] = mapped_column(String(1024))
    mirror_key: Mapped[str] = mapped_column(String(32))  # "push:<id>" or "pull"
    url: Mapped[str | None] = mapped_column(Text)  # scrubbed
    enabled: Mapped[bool] = mapped_column(default=True)
    update_status: Mapped[str] = mapped_column(String(16))
    last_error: Mapped[str | None] = mapped_column(Text)  # scrubbed
    last_successful_update_at: Mapped[datetime | None]
    last_update_at: Mapped[datetime | None]
    alert_state: Mapped[str] = mapped_column(String(16), default="ok")  # ok | failing
    failing_since: Mapped[datetime | None]
    episode: Mapped[int] = mapped_column(Integer, default=0)
    # last_successful_update_at when the episode began: only a newer success re-arms.
    success_at_failure: Mapped[datetime | None]
    observed_at: Mapped[datetime] = mapped_column(default=utcnow)
    failed_checks: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # in a row
    auth_method: Mapped[str | None] = mapped_column(String(32))  # push mirrors only


class AlertMessage(Base):
    """The alert posted for one failure episode of one mirror in one channel."""

    __tablename__ = "alert_messages"
    __table_args__ = (UniqueConstraint("mirror_state_id", "channel_id", "episode"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mirror_state_id: Mapped[int] = mapped_column(ForeignKey("mirror_states.id", ondelete="CASCADE"))
    channel_id: Mapped[str] = mapped_column(String(32))
    episode: Mapped[int] = mapped_column(Integer)
    outbox_key: Mapped[str] = mapped_column(String(255))
    shown_error: Mapped[str | None] = mapped_column(Text)  # what the message shows now
    updates: Mapped[int] = mapped_column(Integer, default=0)
    reminders: Mapped[int] = mapped_column(Integer, default=0)
    posted_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_reminded_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None] = mapped_column(index=True)  # the pruner's cutoff


class WebhookEvent(Base):
    """GitLab hook deliveries, stored before the 200 and processed once. Only what the bot
    uses is kept (kind and project), not the payload: pushes carry commit messages and
    authors' e-mail addresses."""

    __tablename__ = "webhook_inbox"
    # The inbox pass and /metrics want `processed_at IS NULL` in id order, the pruner
    # `processed_at < cutoff`: one index serves both.
    __table_args__ = (Index("ix_webhook_inbox_processed_at", "processed_at", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_key: Mapped[str] = mapped_column(String(255), unique=True)
    # Shared by every hook one trigger fires (project, group, system): processed once.
    event_uuid: Mapped[str | None] = mapped_column(String(64), unique=True)
    event_kind: Mapped[str] = mapped_column(String(64))
    project_id: Mapped[int | None] = mapped_column(BigInteger)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    process_after: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    processed_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)


class OutboxMessage(Base):
    """A Slack Web API call to make at least once; `dedupe_key` makes it shown once."""

    __tablename__ = "slack_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(255), unique=True)
    method: Mapped[str] = mapped_column(String(32))  # chat.postMessage, chat.update, …
    channel_id: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]]
    thread_of: Mapped[str | None] = mapped_column(String(255))  # dedupe_key of the parent
    message_ts: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_until: Mapped[datetime | None]  # a sender owns the row until then
    claimed_by: Mapped[str | None] = mapped_column(String(128))  # … this sender (replica)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)  # the pruner's
    sent_at: Mapped[datetime | None]


class ProjectCheck(Base):
    """Whether the monitor can check a watched project, and the notices that told the
    watching channels when it could not (one per episode, then at most one a day)."""

    __tablename__ = "project_checks"

    project_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    project_path: Mapped[str] = mapped_column(String(1024))
    problem: Mapped[str | None] = mapped_column(String(16))  # None, "lost", "bad_answer", …
    problem_detail: Mapped[str | None] = mapped_column(Text)
    problem_since: Mapped[datetime | None]
    episode: Mapped[int] = mapped_column(Integer, default=0)
    notices: Mapped[int] = mapped_column(Integer, default=0)  # posted in this episode
    last_notice_at: Mapped[datetime | None]
    path_checked_at: Mapped[datetime | None]  # renames are picked up at most a day late


class ScheduledCheck(Base):
    """A check of one project's mirrors due at `due_at` (after a push, for instance).
    At most one is pending per project and reason: the reason names the delay, so a
    burst of pushes to one project schedules one check per delay, not one per push."""

    __tablename__ = "scheduled_checks"
    __table_args__ = (UniqueConstraint("project_id", "reason"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(BigInteger)
    due_at: Mapped[datetime] = mapped_column(index=True)
    reason: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Lease(Base):
    """A role one replica holds at a time (the monitor's leader) until `expires_at`.

    Times are seconds since the epoch on the database's clock, so replicas on hosts whose
    clocks disagree still agree on who holds it."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(128))
    expires_at: Mapped[float] = mapped_column(Double)


class RequestBudgetRow(Base):
    """One row per GitLab token that has a budget: the lock its claims take in turn.
    `token_key` is a hash of the token, never the token."""

    __tablename__ = "request_budgets"

    token_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    claims: Mapped[int] = mapped_column(BigInteger, default=0)


class RequestGrant(Base):
    """`requests` of a token's budget, granted to one replica at `granted_at` (database
    clock, epoch seconds). The grants of the last window never add up to more than the
    budget."""

    __tablename__ = "request_grants"
    __table_args__ = (Index("ix_request_grants_token_key_granted_at", "token_key", "granted_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_key: Mapped[str] = mapped_column(String(64))
    granted_at: Mapped[float] = mapped_column(Double)
    requests: Mapped[int] = mapped_column(Integer)


class RotationRow(Base):
    """One `/mirror rotate`: a new push mirror made beside the old one, then one of them
    deleted. Each state change is one conditional UPDATE (see bot/domain/rotations.py)."""

    __tablename__ = "rotations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    slack_team_id: Mapped[str] = mapped_column(String(32))
    channel_id: Mapped[str] = mapped_column(String(32))
    message_ts: Mapped[str | None] = mapped_column(String(32))  # the progress message
    requester_id: Mapped[str] = mapped_column(String(32))
    requester_gitlab_user_id: Mapped[int | None] = mapped_column(BigInteger)
    project_id: Mapped[int] = mapped_column(BigInteger)
    project_path: Mapped[str] = mapped_column(String(1024))
    old_mirror_id: Mapped[int] = mapped_column(BigInteger)
    new_mirror_id: Mapped[int | None] = mapped_column(BigInteger)
    url: Mapped[str] = mapped_column(Text)  # scrubbed
    settings: Mapped[dict[str, Any]]  # the old mirror's settings the new one gets
    # The new URL with its credentials, encrypted, only until the new mirror exists.
    credentials_ciphertext: Mapped[str | None] = mapped_column(Text)
    public_key: Mapped[str | None] = mapped_column(Text)  # the new SSH mirror's (public)
    state: Mapped[str] = mapped_column(String(16), index=True)
    result: Mapped[str | None] = mapped_column(Text)
    approval_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]  # unfinished by then: the new mirror is cleaned up
    # Whoever drives the flow holds it until then; after it, a worker resumes it.
    running_until: Mapped[datetime | None]
    running_by: Mapped[str | None] = mapped_column(String(128))


class MirrorPresence(Base):
    """What the monitor learned of a watched project: whether it has push mirrors and a
    pull mirror. A scan reads only what exists, and re-checks the rest every Nth scan
    (`MIRRORBOT_RECHECK_EVERY`); shared here so restarts and replicas need not relearn it."""

    __tablename__ = "mirror_presence"

    project_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    has_push_mirrors: Mapped[bool]
    has_pull_mirror: Mapped[bool]
    learned_at: Mapped[datetime]


class MonitorScans(Base):
    """How many full scans the monitor has made (one row), so every Nth scan's re-checks
    are spread over the projects by id and survive a restart or a change of leader."""

    __tablename__ = "monitor_scans"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    scans: Mapped[int] = mapped_column(BigInteger)


class SeenSlackRequest(Base):
    """A Slack request signature admitted once (its SHA-256), shared by every replica: a
    captured request replayed to another replica within its 5 minutes is refused there
    too. Rows outlive Slack's window, by the database's clock, and are then pruned."""

    __tablename__ = "seen_slack_requests"

    signature_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[float] = mapped_column(Double, index=True)  # epoch seconds
