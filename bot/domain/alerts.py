"""The alert state machine: one alert when a mirror starts failing, one when it recovers.

Per mirror (push mirror or the pull mirror) the state is `ok` or `failing`:

- ok → failing when GitLab reports `failed` on an enabled mirror (`to_retry` is GitLab
  still retrying: no alert). A new episode starts only if `last_successful_update_at`
  moved since the previous one, so a mirror that flaps without ever succeeding does not
  alert again.
- while failing: each subscribed, unmuted channel has exactly one alert for the episode;
  it is edited when the error changes, and a reminder goes into its thread every
  `remind_after`.
- failing → ok when a newer successful update is seen: a recovery reply in the thread
  and the alert edited to show it resolved. Disabling or deleting the mirror resolves it
  quietly (the alert says so, without a recovery reply).

Every message goes through the outbox with a key naming what it is, so repeated checks,
repeated webhooks and several replicas add each message once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domain.causes import STOPPED, STUCK, classify, pull_is_stopped, push_is_stuck
from bot.domain.outbox import MessageKind, enqueue
from bot.domain.subscriptions import PULL_KEY, push_key
from bot.gitlab.models import PullMirror, PushMirror
from bot.store.db import transaction
from bot.store.models import AlertMessage, MirrorState, Mute, Subscription, utcnow

OK, FAILING = "ok", "failing"


@dataclass(frozen=True)
class Snapshot:
    """One mirror as GitLab reported it in one check."""

    key: str
    url: str | None
    enabled: bool
    update_status: str
    last_error: str | None
    last_update_at: datetime | None
    last_successful_update_at: datetime | None
    # A cause the timestamps tell rather than the error text: "stuck" (a push update
    # `started` past GitLab's limit) or "stopped" (a pull mirror GitLab no longer retries).
    condition: str | None = None
    auth_method: str | None = None  # push mirrors: ssh_public_key | password

    @property
    def is_failing(self) -> bool:
        return self.enabled and (self.update_status == "failed" or self.condition == STUCK.key)

    @property
    def cause_key(self) -> str:
        return self.condition or classify(self.last_error).key

    @staticmethod
    def of_push(mirror: PushMirror, now: datetime | None = None) -> Snapshot:
        stuck = push_is_stuck(
            mirror.update_status,
            mirror.last_update_started_at,
            mirror.last_successful_update_at,
            now or utcnow(),
        )
        return Snapshot(
            push_key(mirror.id),
            mirror.url,
            mirror.enabled,
            mirror.update_status,
            mirror.last_error,
            mirror.last_update_at,
            mirror.last_successful_update_at,
            STUCK.key if stuck else None,
            mirror.auth_method,
        )

    @staticmethod
    def of_pull(mirror: PullMirror, now: datetime | None = None) -> Snapshot:
        stopped = pull_is_stopped(mirror.update_status, mirror.last_update_at, now or utcnow())
        return Snapshot(
            PULL_KEY,
            mirror.url,
            mirror.enabled,
            mirror.update_status,
            mirror.last_error,
            mirror.last_update_at,
            mirror.last_successful_update_at,
            STOPPED.key if stopped else None,
        )


def snapshots(
    push: list[PushMirror], pull: PullMirror | None, now: datetime | None = None
) -> list[Snapshot]:
    now = now or utcnow()
    found = [Snapshot.of_push(m, now) for m in push]
    if pull is not None:
        found.append(Snapshot.of_pull(pull, now))
    return found


@dataclass(frozen=True)
class ProjectCheck:
    """What one check of one project saw."""

    project_id: int
    project_path: str
    seen: list[Snapshot]


async def apply_check(
    sessions: async_sessionmaker[AsyncSession],
    *,
    project_id: int,
    project_path: str,
    seen: list[Snapshot],
    remind_after: timedelta,
    now: datetime | None = None,
) -> None:
    """Record what a check saw and make the alert transitions it implies."""
    await apply_checks(
        sessions, [ProjectCheck(project_id, project_path, seen)], remind_after=remind_after, now=now
    )


async def apply_checks(
    sessions: async_sessionmaker[AsyncSession],
    checks: list[ProjectCheck],
    *,
    remind_after: timedelta,
    now: datetime | None = None,
) -> None:
    """Apply many projects' checks in one transaction (a scan writes in batches)."""
    for attempt in range(3):
        try:
            async with transaction(sessions) as session:
                await _apply(session, checks, remind_after, now or utcnow())
            return
        except IntegrityError:
            # Another checker created the same mirror's row at the same moment: go again,
            # this time finding it.
            if attempt == 2:
                raise


async def _apply(
    session: AsyncSession, checks: list[ProjectCheck], remind_after: timedelta, now: datetime
) -> None:
    project_ids = [check.project_id for check in checks]
    states: dict[int, dict[str, MirrorState]] = {pid: {} for pid in project_ids}
    for row in (
        await session.scalars(
            select(MirrorState)
            .where(MirrorState.project_id.in_(project_ids))
            .order_by(MirrorState.id)
            .with_for_update()
        )
    ).all():
        states[row.project_id][row.mirror_key] = row
    channels: dict[int, list[str]] = {pid: [] for pid in project_ids}
    for project_id, channel in (
        await session.execute(
            select(Subscription.project_id, Subscription.channel_id).where(
                Subscription.project_id.in_(project_ids),
                Subscription.broken_at.is_(None),  # Slack refused it for good: see watching
            )
        )
    ).all():
        channels[project_id].append(channel)
    muted: dict[int, set[tuple[str, str]]] = {pid: set() for pid in project_ids}
    for mute in (
        await session.scalars(
            select(Mute).where(Mute.project_id.in_(project_ids), Mute.muted_until > now)
        )
    ).all():
        muted[mute.project_id].add((mute.channel_id, mute.mirror_key))
    for check in checks:
        context = _Context(
            session,
            check.project_id,
            check.project_path,
            channels[check.project_id],
            muted[check.project_id],
            remind_after,
            now,
        )
        rows = states[check.project_id]
        current = {snap.key for snap in check.seen}
        for key, row in rows.items():
            if key not in current:
                await context.resolve(row, None, "deleted")
                await session.delete(row)
        for snap in check.seen:
            state = rows.get(snap.key) or await _new_state(
                session, check.project_id, check.project_path, snap
            )
            await context.observe(state, snap)


async def _new_state(
    session: AsyncSession, project_id: int, project_path: str, snap: Snapshot
) -> MirrorState:
    state = MirrorState(
        project_id=project_id,
        mirror_key=snap.key,
        alert_state=OK,
        episode=0,
        project_path=project_path,
        update_status="none",
        enabled=snap.enabled,
        failed_checks=0,
    )
    session.add(state)
    await session.flush()  # the id keys its outbox messages
    return state


@dataclass
class _Context:
    session: AsyncSession
    project_id: int
    project_path: str
    channels: list[str]
    muted: set[tuple[str, str]]
    remind_after: timedelta
    now: datetime

    async def observe(self, row: MirrorState, snap: Snapshot) -> None:
        row.project_path = self.project_path
        row.url = snap.url
        row.enabled = snap.enabled
        row.update_status = snap.update_status
        row.last_error = snap.last_error
        row.last_update_at = snap.last_update_at
        row.last_successful_update_at = snap.last_successful_update_at
        row.observed_at = self.now
        row.failed_checks = (row.failed_checks or 0) + 1 if snap.is_failing else 0
        row.auth_method = snap.auth_method
        if row.alert_state == FAILING:
            if not snap.enabled:
                await self.resolve(row, snap, "disabled")
            elif _succeeded_since(snap, row.success_at_failure):
                await self.resolve(row, snap, "recovered")
        elif snap.is_failing and (
            row.episode == 0 or _succeeded_since(snap, row.success_at_failure)
        ):
            row.alert_state = FAILING
            row.episode += 1
            # A stuck update has no end time yet: it is failing from when it was seen so.
            stuck = snap.condition == STUCK.key
            row.failing_since = self.now if stuck else (snap.last_update_at or self.now)
            row.success_at_failure = snap.last_successful_update_at
        if row.alert_state == FAILING:
            await self.keep_alerts_current(row, snap)

    async def keep_alerts_current(self, row: MirrorState, snap: Snapshot) -> None:
        alerts = {
            a.channel_id: a
            for a in (
                await self.session.scalars(
                    select(AlertMessage).where(
                        AlertMessage.mirror_state_id == row.id, AlertMessage.episode == row.episode
                    )
                )
            ).all()
        }
        for channel in self.channels:
            if (channel, row.mirror_key) in self.muted:
                continue
            alert = alerts.get(channel)
            if alert is None:
                key = f"alert:{row.id}:{row.episode}:{channel}"
                await enqueue(
                    self.session,
                    key=key,
                    kind=MessageKind.ALERT,
                    channel_id=channel,
                    payload=self.payload(row, snap, "failing"),
                )
                self.session.add(
                    AlertMessage(
                        mirror_state_id=row.id,
                        channel_id=channel,
                        episode=row.episode,
                        outbox_key=key,
                        shown_error=snap.last_error,
                        posted_at=self.now,
                    )
                )
                continue
            if snap.last_error and alert.shown_error != snap.last_error:
                alert.updates += 1
                alert.shown_error = snap.last_error
                await enqueue(
                    self.session,
                    key=f"{alert.outbox_key}:update:{alert.updates}",
                    kind=MessageKind.ALERT_UPDATE,
                    channel_id=channel,
                    payload=self.payload(row, snap, "failing"),
                    thread_of=alert.outbox_key,
                )
            last = alert.last_reminded_at or alert.posted_at
            if self.now - last >= self.remind_after:
                alert.reminders += 1
                alert.last_reminded_at = self.now
                await enqueue(
                    self.session,
                    key=f"{alert.outbox_key}:remind:{alert.reminders}",
                    kind=MessageKind.ALERT_REMINDER,
                    channel_id=channel,
                    payload=self.payload(row, snap, "failing"),
                    thread_of=alert.outbox_key,
                )

    async def resolve(self, row: MirrorState, snap: Snapshot | None, how: str) -> None:
        """Close the episode: a recovery reply (if it recovered) and the alert updated."""
        row.alert_state = OK
        alerts = (
            await self.session.scalars(
                select(AlertMessage).where(
                    AlertMessage.mirror_state_id == row.id,
                    AlertMessage.episode == row.episode,
                    AlertMessage.resolved_at.is_(None),
                )
            )
        ).all()
        for alert in alerts:
            alert.resolved_at = self.now
            if (alert.channel_id, row.mirror_key) in self.muted:
                continue  # a mute silences the recovery too
            payload = self.payload(row, snap, how)
            if how == "recovered":
                await enqueue(
                    self.session,
                    key=f"{alert.outbox_key}:recovered",
                    kind=MessageKind.ALERT_RECOVERY,
                    channel_id=alert.channel_id,
                    payload=payload,
                    thread_of=alert.outbox_key,
                )
            await enqueue(
                self.session,
                key=f"{alert.outbox_key}:resolved",
                kind=MessageKind.ALERT_UPDATE,
                channel_id=alert.channel_id,
                payload=payload,
                thread_of=alert.outbox_key,
            )

    def payload(self, row: MirrorState, snap: Snapshot | None, state: str) -> dict[str, Any]:
        """Everything the renderer needs, as JSON: the outbox outlives this process."""
        error = snap.last_error if snap else row.last_error
        return {
            "state": state,
            "project_id": self.project_id,
            "project_path": self.project_path,
            "mirror_key": row.mirror_key,
            "url": snap.url if snap else row.url,
            "last_error": error,
            "cause": snap.cause_key if snap else classify(error).key,
            "failing_since": _iso(row.failing_since),
            "last_successful_update_at": _iso(
                snap.last_successful_update_at if snap else row.last_successful_update_at
            ),
            "observed_at": _iso(self.now),
        }


def _succeeded_since(snap: Snapshot, since: datetime | None) -> bool:
    success = snap.last_successful_update_at
    return success is not None and (since is None or _later(success, since))


def _later(moment: datetime, than: datetime) -> bool:
    """`moment > than` at the coarser of their precisions: GitLab's REST writes
    milliseconds and its GraphQL whole seconds, so the same success read once each way
    must not look like a new one (a recovery that never happened)."""
    if moment.microsecond == 0 or than.microsecond == 0:
        return moment.replace(microsecond=0) > than.replace(microsecond=0)
    return moment > than


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
