"""Checking watched projects: the periodic scan and the checks a push schedules.

GitLab fires no webhook when a mirror fails, so the monitor polls every watched project
with the service token, at most `concurrency` at a time and within a requests-per-minute
budget. A push schedules extra checks, because push mirrors update after the push.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domain.alerts import ProjectCheck, apply_checks, snapshots
from bot.domain.project_access import (
    Readable,
    Unreadable,
    paths_to_check,
    record_access,
    unreadable,
)
from bot.domain.subscriptions import observe_project
from bot.gitlab.client import GitLabClient
from bot.store.db import transaction
from bot.store.models import ScheduledCheck, Subscription, utcnow

log = logging.getLogger(__name__)


@dataclass
class ScanResult:
    checked: int = 0
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0


async def watched_projects(sessions: async_sessionmaker[AsyncSession]) -> dict[int, str]:
    """Project id → path, for every project at least one channel watches."""
    async with sessions() as session:
        rows = (
            await session.execute(select(Subscription.project_id, Subscription.project_path))
        ).all()
    return {project_id: path for project_id, path in rows}


async def check_project(
    sessions: async_sessionmaker[AsyncSession],
    gitlab: GitLabClient,
    project_id: int,
    path: str | None,
    *,
    remind_after: timedelta,
) -> None:
    path, push, pull = await observe_project(gitlab, project_id, path)
    await apply_checks(
        sessions, [ProjectCheck(project_id, path, snapshots(push, pull))], remind_after=remind_after
    )


async def check_projects(
    sessions: async_sessionmaker[AsyncSession],
    gitlab: GitLabClient,
    projects: Iterable[tuple[int, str | None]],
    *,
    concurrency: int,
    remind_after: timedelta,
    batch: int = 100,
) -> ScanResult:
    """Read GitLab `concurrency` projects at a time; one writer applies what they saw in
    batches, as it arrives, so the database is never the bottleneck and a failure found
    early in a long scan alerts at once. A project that cannot be read is that project's
    problem (see project_access): the others are checked all the same."""
    started = time.monotonic()
    result = ScanResult()
    projects = list(projects)
    limit = asyncio.Semaphore(concurrency)
    seen: asyncio.Queue[tuple[ProjectCheck | None, Readable | Unreadable] | None] = asyncio.Queue()
    read_path = await paths_to_check(sessions, (project_id for project_id, _ in projects))

    async def read(project_id: int, known_path: str | None) -> None:
        path = None if project_id in read_path else known_path
        async with limit:
            try:
                path, push, pull = await observe_project(gitlab, project_id, path)
            except Exception as exc:  # one project's trouble never ends the scan
                problem = unreadable(project_id, known_path or str(project_id), exc)
                words = problem.what if problem else getattr(exc, "user_message", repr(exc))
                result.problems.append(f"project {project_id}: {words}")
                if problem is None:  # passing (429, 5xx, timeout): the next scan tries again
                    log.warning("could not check project %s: %s", project_id, words)
                else:
                    await seen.put((None, problem))
                return
        check = ProjectCheck(project_id, path, snapshots(push, pull))
        await seen.put((check, Readable(project_id, path, path_checked=project_id in read_path)))

    async def write() -> None:
        done = False
        while not done:
            items = []
            item = await seen.get()
            while True:
                if item is None:
                    done = True
                    break
                items.append(item)
                if len(items) >= batch or seen.empty():
                    break
                item = seen.get_nowait()
            checks = [check for check, _ in items if check is not None]
            if checks:
                await apply_checks(sessions, checks, remind_after=remind_after)
                result.checked += len(checks)
            await record_access(sessions, [outcome for _, outcome in items])

    writer = asyncio.create_task(write())
    try:
        await asyncio.gather(*(read(project_id, path) for project_id, path in projects))
    finally:
        await seen.put(None)
        await writer
    result.seconds = time.monotonic() - started
    return result


async def scan(
    sessions: async_sessionmaker[AsyncSession],
    gitlab: GitLabClient,
    *,
    concurrency: int,
    remind_after: timedelta,
) -> ScanResult:
    projects = await watched_projects(sessions)
    return await check_projects(
        sessions, gitlab, projects.items(), concurrency=concurrency, remind_after=remind_after
    )


async def schedule_checks(
    session: AsyncSession, project_id: int, delays: Iterable[float], reason: str
) -> None:
    """One pending check per project and delay: a push while one is pending adds nothing
    (the pending one runs after this push too, and runs sooner than a new one would)."""
    now = utcnow()
    rows = [
        {
            "project_id": project_id,
            "reason": f"{reason} +{delay:g}s"[:64],
            "due_at": now + timedelta(seconds=delay),
            "created_at": now,
        }
        for delay in delays
    ]
    if not rows:
        return
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    insert = postgres_insert if dialect == "postgresql" else sqlite_insert
    await session.execute(insert(ScheduledCheck).on_conflict_do_nothing(), rows)


async def take_due_checks(sessions: async_sessionmaker[AsyncSession]) -> list[int]:
    """Remove and return the projects whose scheduled checks are due (each project once)."""
    now = utcnow()
    async with transaction(sessions) as session:
        query = select(ScheduledCheck).where(ScheduledCheck.due_at <= now)
        if session.bind is not None and session.bind.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        due = (await session.scalars(query)).all()
        if due:
            await session.execute(
                delete(ScheduledCheck).where(ScheduledCheck.id.in_([check.id for check in due]))
            )
        return sorted({check.project_id for check in due})
