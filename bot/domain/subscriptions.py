"""Channels watching projects, mutes, and the monitor's latest observations of mirrors."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domain import audit
from bot.domain.outbox import MessageKind, enqueue
from bot.gitlab.client import GitLabClient
from bot.gitlab.errors import InsufficientRole, PullMirrorNotConfigured
from bot.gitlab.models import Project, PullMirror, PushMirror
from bot.gitlab.refs import ProjectRef
from bot.store.db import transaction
from bot.store.models import (
    AlertMessage,
    MirrorState,
    Mute,
    OutboxMessage,
    Subscription,
    utcnow,
)

PULL_KEY = "pull"


def push_key(mirror_id: int) -> str:
    return f"push:{mirror_id}"


def _mirror_id(mirror_key: str) -> int | None:
    return None if mirror_key == PULL_KEY else int(mirror_key.split(":", 1)[1])


def _mirror_name(mirror_key: str) -> str:
    mirror_id = _mirror_id(mirror_key)
    return "the pull mirror" if mirror_id is None else f"push mirror {mirror_id}"


@dataclass(frozen=True)
class SubscriptionInfo:
    channel_id: str
    project_id: int
    project_path: str
    created_by: str
    channel_name: str | None = None
    broken_at: datetime | None = None  # Slack refused its posts for good (see broken_reason)
    broken_reason: str | None = None
    group_subscription_id: int | None = None  # added by a group subscription
    already: bool = False  # `watch` found the channel watching the project already

    @staticmethod
    def of(row: Subscription) -> SubscriptionInfo:
        return SubscriptionInfo(
            row.channel_id,
            row.project_id,
            row.project_path,
            row.created_by,
            row.channel_name,
            row.broken_at,
            row.broken_reason,
            row.group_subscription_id,
        )


@dataclass(frozen=True)
class MuteInfo:
    channel_id: str
    project_id: int
    mirror_key: str
    muted_until: datetime
    muted_by: str


@dataclass(frozen=True)
class MirrorObservation:
    """One mirror as last seen by the monitor (or a refresh)."""

    project_id: int
    project_path: str
    mirror_key: str
    url: str | None
    enabled: bool
    update_status: str
    last_error: str | None
    last_successful_update_at: datetime | None
    observed_at: datetime
    alert_state: str = "ok"
    failing_since: datetime | None = None
    failed_checks: int = 0  # checks in a row that saw it failing
    auth_method: str | None = None
    last_update_at: datetime | None = None

    @property
    def is_failing(self) -> bool:
        # "failing" also covers what only the timestamps tell (a stuck update).
        return self.enabled and (self.update_status == "failed" or self.alert_state == "failing")

    @property
    def direction(self) -> str:
        return "pull" if self.mirror_key == PULL_KEY else "push"

    @property
    def host(self) -> str:
        """The target's host name: never the userinfo, even of an unscrubbed URL."""
        return urlsplit(self.url or "").hostname or ""

    @property
    def mirror_id(self) -> int | None:
        return _mirror_id(self.mirror_key)

    @staticmethod
    def of(row: MirrorState) -> MirrorObservation:
        return MirrorObservation(
            row.project_id,
            row.project_path,
            row.mirror_key,
            row.url,
            row.enabled,
            row.update_status,
            row.last_error,
            row.last_successful_update_at,
            row.observed_at,
            row.alert_state,
            row.failing_since,
            row.failed_checks or 0,
            row.auth_method,
            row.last_update_at,
        )


class Subscriptions:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def watch(
        self,
        gitlab: GitLabClient,
        ref: ProjectRef,
        *,
        team_id: str,
        channel_id: str,
        user_id: str,
        channel_name: str | None = None,
    ) -> SubscriptionInfo:
        """Subscribe a channel, only if the caller's own token can read the mirrors. The
        channel was checked (`channel_to_watch_into`): a broken subscription is repaired."""
        project = await gitlab.get_project(ref)
        # Proves the caller's own token can read the mirrors before alerts reveal them.
        await gitlab.list_push_mirrors(ProjectRef.of(project.id, project.path_with_namespace))
        async with transaction(self._sessions) as session:
            existing = await session.scalar(
                select(Subscription).where(
                    Subscription.channel_id == channel_id, Subscription.project_id == project.id
                )
            )
            if existing is None:
                session.add(
                    Subscription(
                        slack_team_id=team_id,
                        channel_id=channel_id,
                        project_id=project.id,
                        project_path=project.path_with_namespace,
                        created_by=user_id,
                        channel_name=channel_name,
                    )
                )
                audit.record(
                    session,
                    actor=user_id,
                    event=audit.AuditEvent.EXECUTED,
                    operation=audit.Action.WATCH,
                    project=project.path_with_namespace,
                    channel=channel_id,
                )
            else:
                existing.project_path = project.path_with_namespace
                existing.channel_name = channel_name or existing.channel_name
                existing.group_subscription_id = None  # watched directly: outlives the group
                if existing.broken_at is not None:  # watched again into a working channel
                    existing.broken_at = existing.broken_reason = None
                    existing.created_by = user_id  # who to tell if it breaks again
                    await _forget_undelivered_alerts(session, channel_id, project.id)
                else:
                    return replace(SubscriptionInfo.of(existing), already=True)
        return SubscriptionInfo(
            channel_id, project.id, project.path_with_namespace, user_id, channel_name
        )

    async def unwatch(self, channel_id: str, project: Project, *, by: str) -> bool:
        async with transaction(self._sessions) as session:
            result = await session.execute(
                delete(Subscription).where(
                    Subscription.channel_id == channel_id, Subscription.project_id == project.id
                )
            )
            removed = bool(result.rowcount)  # type: ignore[attr-defined]
            if removed:
                audit.record(
                    session,
                    actor=by,
                    event=audit.AuditEvent.EXECUTED,
                    operation=audit.Action.UNWATCH,
                    project=project.path_with_namespace,
                    channel=channel_id,
                )
            return removed

    async def unwatch_by_path(self, channel_id: str, path: str) -> bool:
        async with transaction(self._sessions) as session:
            result = await session.execute(
                delete(Subscription).where(
                    Subscription.channel_id == channel_id, Subscription.project_path == path
                )
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def of_channel(self, channel_id: str) -> list[SubscriptionInfo]:
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(Subscription)
                    .where(Subscription.channel_id == channel_id)
                    .order_by(Subscription.project_path)
                )
            ).all()
        return [SubscriptionInfo.of(r) for r in rows]

    async def of_channels(self, channel_ids: list[str]) -> list[SubscriptionInfo]:
        if not channel_ids:
            return []
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(Subscription).where(Subscription.channel_id.in_(channel_ids))
                )
            ).all()
        return [SubscriptionInfo.of(r) for r in rows]

    async def broken_for(self, user_id: str, channel_ids: list[str]) -> list[SubscriptionInfo]:
        """Broken subscriptions the user made, or in channels the user is in."""
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(Subscription)
                    .where(
                        Subscription.broken_at.is_not(None),
                        or_(
                            Subscription.created_by == user_id,
                            Subscription.channel_id.in_(channel_ids),
                        ),
                    )
                    .order_by(Subscription.project_path)
                )
            ).all()
        return [SubscriptionInfo.of(r) for r in rows]

    async def channels_of(self, project_id: int) -> list[str]:
        async with self._sessions() as session:
            return list(
                (
                    await session.scalars(
                        select(Subscription.channel_id).where(Subscription.project_id == project_id)
                    )
                ).all()
            )

    async def watched_project_ids(self) -> list[int]:
        async with self._sessions() as session:
            return sorted(set((await session.scalars(select(Subscription.project_id))).all()))

    # --- mutes -----------------------------------------------------------------------------

    async def mute(
        self,
        channel_id: str,
        project_id: int,
        mirror_key: str,
        until: datetime,
        by: str,
        *,
        project_path: str,
    ) -> None:
        async with transaction(self._sessions) as session:
            await session.execute(
                delete(Mute).where(
                    Mute.channel_id == channel_id,
                    Mute.project_id == project_id,
                    Mute.mirror_key == mirror_key,
                )
            )
            session.add(
                Mute(
                    channel_id=channel_id,
                    project_id=project_id,
                    mirror_key=mirror_key,
                    muted_until=until,
                    muted_by=by,
                )
            )
            audit.record(
                session,
                actor=by,
                event=audit.AuditEvent.EXECUTED,
                operation=audit.Action.MUTE,
                project=project_path,
                mirror_id=_mirror_id(mirror_key),
                result=f"{_mirror_name(mirror_key)} muted until {until.isoformat()}",
                channel=channel_id,
            )

    async def unmute(self, channel_id: str, project: Project, mirror_key: str, *, by: str) -> bool:
        async with transaction(self._sessions) as session:
            result = await session.execute(
                delete(Mute).where(
                    Mute.channel_id == channel_id,
                    Mute.project_id == project.id,
                    Mute.mirror_key == mirror_key,
                    Mute.muted_until > utcnow(),
                )
            )
            ended = bool(result.rowcount)  # type: ignore[attr-defined]
            if ended:
                audit.record(
                    session,
                    actor=by,
                    event=audit.AuditEvent.EXECUTED,
                    operation=audit.Action.UNMUTE,
                    project=project.path_with_namespace,
                    mirror_id=_mirror_id(mirror_key),
                    result=f"{_mirror_name(mirror_key)} unmuted",
                    channel=channel_id,
                )
            return ended

    async def active_mutes(self, channel_id: str) -> list[MuteInfo]:
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(Mute).where(Mute.channel_id == channel_id, Mute.muted_until > utcnow())
                )
            ).all()
        return [
            MuteInfo(r.channel_id, r.project_id, r.mirror_key, r.muted_until, r.muted_by)
            for r in rows
        ]

    # --- observations ------------------------------------------------------------------------

    async def observations(self, project_ids: list[int]) -> list[MirrorObservation]:
        if not project_ids:
            return []
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(MirrorState).where(MirrorState.project_id.in_(project_ids))
                )
            ).all()
        return [MirrorObservation.of(row) for row in rows]

    async def every_observation(self) -> list[MirrorObservation]:
        """Every mirror the monitor has seen, for /metrics: one query, no GitLab call."""
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(MirrorState).order_by(MirrorState.project_path, MirrorState.mirror_key)
                )
            ).all()
        return [MirrorObservation.of(row) for row in rows]


async def observe_project(
    gitlab: GitLabClient, project_id: int, path: str | None = None
) -> tuple[str, list[PushMirror], PullMirror | None]:
    """Read one project's push mirrors and pull mirror (None when it has none).
    With a known `path`, two requests; otherwise one more to learn the path."""
    if path is None:
        path = (await gitlab.get_project(ProjectRef(str(project_id)))).path_with_namespace
    ref = ProjectRef.of(project_id, path)
    push = await gitlab.list_push_mirrors(ref)
    try:
        pull: PullMirror | None = await gitlab.get_pull_mirror(ref)
    except (PullMirrorNotConfigured, InsufficientRole):
        pull = None
    return path, push, pull


async def _forget_undelivered_alerts(
    session: AsyncSession, channel_id: str, project_id: int
) -> None:
    """A repaired channel gets the alerts of mirrors failing now: forget this project's
    open alerts there and the messages Slack refused (their keys free again), so the next
    check posts them afresh."""
    states = select(MirrorState.id).where(MirrorState.project_id == project_id)
    alerts = (
        await session.scalars(
            select(AlertMessage).where(
                AlertMessage.channel_id == channel_id,
                AlertMessage.mirror_state_id.in_(states),
                AlertMessage.resolved_at.is_(None),
            )
        )
    ).all()
    for alert in alerts:
        await session.execute(
            delete(OutboxMessage).where(
                OutboxMessage.status == "failed",
                or_(
                    OutboxMessage.dedupe_key == alert.outbox_key,
                    OutboxMessage.thread_of == alert.outbox_key,
                ),
            )
        )
        await session.delete(alert)


async def mark_channel_broken(
    session: AsyncSession, channel_id: str, reason: str, *, now: datetime | None = None
) -> list[SubscriptionInfo]:
    """Slack refused a post into `channel_id` for good: its subscriptions stop getting
    alerts, and each person who made one gets one direct message (through the outbox).
    Returns the subscriptions this call broke; ones already broken are left alone, so a
    second failure, or a second replica, tells nobody twice."""
    now = now or utcnow()
    rows = (
        await session.scalars(
            select(Subscription).where(
                Subscription.channel_id == channel_id, Subscription.broken_at.is_(None)
            )
        )
    ).all()
    broken: list[SubscriptionInfo] = []
    for row in rows:
        result = await session.execute(
            update(Subscription)
            .where(Subscription.id == row.id, Subscription.broken_at.is_(None))
            .values(broken_at=now, broken_reason=reason[:64])
        )
        if result.rowcount:  # type: ignore[attr-defined]
            await session.refresh(row)
            broken.append(SubscriptionInfo.of(row))
    by_person: dict[str, list[SubscriptionInfo]] = {}
    for info in broken:
        by_person.setdefault(info.created_by, []).append(info)
    for person, theirs in by_person.items():
        await enqueue(
            session,
            key=f"broken:{channel_id}:{person}:{now.isoformat()}",
            kind=MessageKind.NOTICE,
            channel_id=person,  # a direct message from the app
            payload={
                "notice": "channel_broken",
                "channel_id": channel_id,
                "channel_name": theirs[0].channel_name,
                "reason": reason,
                "projects": [info.project_path for info in theirs],
            },
        )
    return broken
