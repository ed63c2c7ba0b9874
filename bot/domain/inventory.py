"""The inventory of a group: every push and pull mirror of its projects, summary first.

Answered from the monitor's observations when a channel watches the group (the answer
says how old they are); otherwise read from GitLab with the caller's token, within its
request budget. Only projects the caller maintains are listed: their mirrors are the ones
the caller's token can read.
"""

from __future__ import annotations

import asyncio
import csv
import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domain.alerts import Snapshot
from bot.domain.causes import UNKNOWN, cause_named, classify
from bot.domain.subscriptions import PULL_KEY
from bot.gitlab.client import GitLabClient
from bot.gitlab.errors import GitLabError, InsufficientRole, PullMirrorNotConfigured
from bot.gitlab.models import MAINTAINER, Project, PullMirror
from bot.gitlab.refs import GroupRef, ProjectRef
from bot.store.models import GroupSubscription, MirrorState, utcnow


@dataclass(frozen=True)
class InventoryRow:
    project_path: str
    direction: str  # push | pull
    mirror: str  # the push mirror id, or "pull"
    host: str
    path: str
    url: str  # scrubbed
    status: str
    enabled: bool
    auth_method: str
    last_success: datetime | None
    last_error: str | None
    cause: str  # the likely cause's title, "" when none
    failing: bool
    stale: bool


@dataclass(frozen=True)
class Inventory:
    group_path: str
    projects: int
    rows: list[InventoryRow]
    stale_after_days: int
    observed_at: datetime | None  # the oldest observation used; None when read just now
    unreadable: list[str]  # projects GitLab did not answer for

    @property
    def failing(self) -> int:
        return sum(row.failing for row in self.rows)

    @property
    def stale(self) -> int:
        return sum(row.stale for row in self.rows)

    @property
    def disabled(self) -> int:
        return sum(not row.enabled for row in self.rows)


CSV_COLUMNS = [
    "project",
    "direction",
    "mirror",
    "host",
    "path",
    "url",
    "status",
    "enabled",
    "auth_method",
    "last_success",
    "likely_cause",
    "last_error",
]


def inventory_csv(inventory: Inventory) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in inventory.rows:
        writer.writerow(
            [
                row.project_path,
                row.direction,
                row.mirror,
                row.host,
                row.path,
                row.url,
                "failing" if row.failing else row.status,
                "yes" if row.enabled else "no",
                row.auth_method,
                row.last_success.isoformat() if row.last_success else "",
                row.cause,
                row.last_error or "",
            ]
        )
    return out.getvalue()


async def take_inventory(
    sessions: async_sessionmaker[AsyncSession],
    gitlab: GitLabClient,
    ref: GroupRef,
    *,
    stale_after: timedelta,
    concurrency: int,
    now: datetime | None = None,
) -> Inventory:
    now = now or utcnow()
    group = await gitlab.get_group(ref)
    projects = await gitlab.list_group_projects(
        GroupRef(str(group.id)), min_access_level=MAINTAINER
    )
    paths = {p.id: p.path_with_namespace for p in projects}
    observed: dict[int, list[MirrorState]] = {}
    async with sessions() as session:
        watched = await session.scalar(
            select(GroupSubscription.id).where(GroupSubscription.group_id == group.id).limit(1)
        )
        if watched is not None and paths:
            for state in (
                await session.scalars(
                    select(MirrorState).where(MirrorState.project_id.in_(list(paths)))
                )
            ).all():
                observed.setdefault(state.project_id, []).append(state)
    rows: list[InventoryRow] = []
    for project_id, states in observed.items():
        rows += [_row_of_state(paths[project_id], s, stale_after, now) for s in states]
    to_read = [p for p in projects if p.id not in observed]
    limit = asyncio.Semaphore(concurrency)
    unreadable: list[str] = []

    async def read(project: Project) -> list[InventoryRow]:
        async with limit:
            try:
                snaps = await _read_project(gitlab, project, now)
            except GitLabError as exc:
                unreadable.append(f"{project.path_with_namespace}: {exc.user_message}")
                return []
        return [_row_of_snapshot(project.path_with_namespace, s, stale_after, now) for s in snaps]

    for found in await asyncio.gather(*(read(p) for p in to_read)):
        rows += found
    rows.sort(key=lambda r: (not r.failing, r.project_path, r.direction, r.mirror))
    oldest = min((s.observed_at for states in observed.values() for s in states), default=None)
    return Inventory(
        group.full_path,
        len(projects),
        rows,
        stale_after.days,
        oldest,
        sorted(unreadable),
    )


async def _read_project(gitlab: GitLabClient, project: Project, now: datetime) -> list[Snapshot]:
    ref = ProjectRef.of(project.id, project.path_with_namespace)
    push = await gitlab.list_push_mirrors(ref)
    pull: PullMirror | None = None
    if project.mirror is not False:  # the listing says which projects pull (Premium)
        try:
            pull = await gitlab.get_pull_mirror(ref)
        except (PullMirrorNotConfigured, InsufficientRole):
            pull = None
    found = [Snapshot.of_push(m, now) for m in push]
    if pull is not None:
        found.append(Snapshot.of_pull(pull, now))
    return found


def _is_stale(
    enabled: bool, last_success: datetime | None, stale_after: timedelta, now: datetime
) -> bool:
    return enabled and last_success is not None and now - last_success > stale_after


def _target(url: str | None) -> tuple[str, str]:
    parts = urlsplit(url or "")
    return parts.hostname or "", parts.path


def _row_of_snapshot(
    project_path: str, snap: Snapshot, stale_after: timedelta, now: datetime
) -> InventoryRow:
    host, path = _target(snap.url)
    pull = snap.key == PULL_KEY
    cause = cause_named(snap.condition) or classify(snap.last_error)
    title = cause.title if cause is not UNKNOWN else ""
    return InventoryRow(
        project_path,
        "pull" if pull else "push",
        "pull" if pull else snap.key.removeprefix("push:"),
        host,
        path,
        snap.url or "",
        snap.update_status,
        snap.enabled,
        snap.auth_method or "",
        snap.last_successful_update_at,
        snap.last_error,
        title if (snap.is_failing or snap.last_error or snap.condition) else "",
        snap.is_failing,
        _is_stale(snap.enabled, snap.last_successful_update_at, stale_after, now),
    )


def _row_of_state(
    project_path: str, state: MirrorState, stale_after: timedelta, now: datetime
) -> InventoryRow:
    host, path = _target(state.url)
    pull = state.mirror_key == PULL_KEY
    failing = state.enabled and (state.update_status == "failed" or state.alert_state == "failing")
    cause = classify(state.last_error)
    return InventoryRow(
        project_path,
        "pull" if pull else "push",
        "pull" if pull else state.mirror_key.removeprefix("push:"),
        host,
        path,
        state.url or "",
        state.update_status,
        state.enabled,
        state.auth_method or "",
        state.last_successful_update_at,
        state.last_error,
        cause.title if cause is not UNKNOWN and state.last_error else "",
        failing,
        _is_stale(state.enabled, state.last_successful_update_at, stale_after, now),
    )
