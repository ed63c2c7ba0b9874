"""Whether the monitor can still check each watched project, and telling people when not.

A project the service token can no longer read (deleted, moved out of reach, role
removed) would otherwise go quiet: its alerts just stop. Each watching channel gets one
notice when that starts, again at most once a day while it lasts, and a short note when
the project can be read again. An answer that is not GitLab's (an SSO proxy's page) or a
rejected service token is logged once per change, not once per scan. Notices go through
the outbox under keys naming the episode and the count, so replicas and restarts add each
one once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domain.outbox import MessageKind, enqueue
from bot.gitlab import errors
from bot.store.db import transaction
from bot.store.models import MirrorState, ProjectCheck, Subscription, utcnow

log = logging.getLogger(__name__)
NOTICE_EVERY = timedelta(days=1)
PATH_CHECK_EVERY = timedelta(days=1)  # a renamed project's new path shows within a day
# Each project's path is read again after between half a day and a day, by its id: read
# all at once on the first scan, they then come due spread over half a day, not all in
# one scan that would take half as long again.
PATH_CHECK_SPREAD = 64


def path_check_period(project_id: int) -> timedelta:
    share = (project_id % PATH_CHECK_SPREAD) / (2 * PATH_CHECK_SPREAD)
    return PATH_CHECK_EVERY * (1 - share)


class Problem(StrEnum):
    LOST = "lost"  # the service token cannot read the project (404/403/401)
    BAD_ANSWER = "bad_answer"  # a 200 that is not GitLab's API
    # The service token itself is refused: every project. (A state name, not a secret.)
    TOKEN_REJECTED = "token_rejected"  # noqa: S105


@dataclass(frozen=True)
class Readable:
    project_id: int
    path: str
    path_checked: bool  # the path came from GitLab in this check (not from the database)


@dataclass(frozen=True)
class Unreadable:
    project_id: int
    path: str
    problem: Problem
    what: str  # what happened, in words for the notice and the log


def unreadable(project_id: int, path: str, exc: Exception) -> Unreadable | None:
    """The project's problem, or None for a passing one (429, 5xx, timeouts) that the next
    scan retries without anyone being told."""
    if isinstance(exc, errors.ProjectNotFound):
        what = (
            "GitLab answers 404: the project was deleted, or moved where the service user "
            "cannot see it"
        )
        return Unreadable(project_id, path, Problem.LOST, what)
    if isinstance(exc, errors.InsufficientRole):
        what = f"the service user lacks the Maintainer role there (GitLab answers {exc.status})"
        return Unreadable(project_id, path, Problem.LOST, what)
    if isinstance(exc, errors.TokenRejected | errors.InsufficientScope):
        return Unreadable(project_id, path, Problem.TOKEN_REJECTED, exc.user_message)
    if isinstance(exc, errors.UnexpectedAnswer):
        return Unreadable(project_id, path, Problem.BAD_ANSWER, exc.user_message)
    if isinstance(exc, errors.GitLabError):
        return None
    return Unreadable(project_id, path, Problem.BAD_ANSWER, f"{type(exc).__name__} reading it")


async def paths_to_check(
    sessions: async_sessionmaker[AsyncSession],
    project_ids: Iterable[int],
    now: datetime | None = None,
) -> set[int]:
    """The projects whose path should be read from GitLab in this check: not read for
    their period (`path_check_period`), or not readable last time (it may have moved). A
    project whose path was never read has the path GitLab gave when it was watched (a
    project read, a group listing): that counts as read then."""
    ids = list(project_ids)
    due = set(ids)
    now = now or utcnow()
    async with sessions() as session:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = await session.execute(
                select(
                    ProjectCheck.project_id, ProjectCheck.path_checked_at, ProjectCheck.problem
                ).where(ProjectCheck.project_id.in_(chunk))
            )
            unchecked = set(chunk)
            for project_id, checked_at, problem in rows.all():
                if problem is not None or checked_at is not None:
                    unchecked.discard(project_id)
                if problem is None and _fresh(project_id, checked_at, now):
                    due.discard(project_id)
            if unchecked:
                watched = await session.execute(
                    select(Subscription.project_id, func.min(Subscription.created_at))
                    .where(Subscription.project_id.in_(unchecked))
                    .group_by(Subscription.project_id)
                )
                for project_id, watched_at in watched.all():
                    if _fresh(project_id, watched_at, now):
                        due.discard(project_id)
    return due


def _fresh(project_id: int, read_at: datetime | None, now: datetime) -> bool:
    return read_at is not None and now - read_at < path_check_period(project_id)


async def record_access(
    sessions: async_sessionmaker[AsyncSession],
    outcomes: list[Readable | Unreadable],
    *,
    now: datetime | None = None,
) -> None:
    """Record what one batch of checks found out about reaching each project."""
    if not outcomes:
        return
    for attempt in range(3):
        try:
            async with transaction(sessions) as session:
                await _record(session, outcomes, now or utcnow())
            return
        except IntegrityError:
            # Another checker added the same project's row at the same moment: go again.
            if attempt == 2:
                raise


async def _record(
    session: AsyncSession, outcomes: list[Readable | Unreadable], now: datetime
) -> None:
    ids = [o.project_id for o in outcomes]
    query = select(ProjectCheck).where(ProjectCheck.project_id.in_(ids))
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        query = query.order_by(ProjectCheck.project_id).with_for_update()
    rows = {row.project_id: row for row in (await session.scalars(query)).all()}
    rejected = 0
    for outcome in outcomes:
        row = rows.get(outcome.project_id)
        if row is None:
            row = ProjectCheck(
                project_id=outcome.project_id, project_path=outcome.path, episode=0, notices=0
            )
            session.add(row)
            rows[outcome.project_id] = row
        if isinstance(outcome, Readable):
            await _readable(session, row, outcome, now)
        elif outcome.problem is Problem.TOKEN_REJECTED:
            rejected += row.problem != outcome.problem
            _set_problem(row, outcome, now)
        else:
            await _unreadable(session, row, outcome, now)
    if rejected:
        log.error(
            "the service token is refused (%s): %d watched projects cannot be checked",
            next(
                o.what
                for o in outcomes
                if isinstance(o, Unreadable) and o.problem is Problem.TOKEN_REJECTED
            ),
            rejected,
        )


async def _readable(
    session: AsyncSession, row: ProjectCheck, outcome: Readable, now: datetime
) -> None:
    if outcome.path_checked:
        row.path_checked_at = now
        row.project_path = outcome.path
        await _renamed(session, outcome.project_id, outcome.path)
    if row.problem is None:
        return
    log.info("project %s (%s) can be checked again", outcome.project_id, outcome.path)
    if row.problem == Problem.LOST and row.notices:
        for channel in await _channels(session, outcome.project_id):
            await enqueue(
                session,
                key=f"readable:{outcome.project_id}:{row.episode}:{channel}",
                kind=MessageKind.NOTICE,
                channel_id=channel,
                payload={"notice": "project_readable", "project_path": outcome.path},
            )
    row.problem = row.problem_detail = row.problem_since = None


def _set_problem(row: ProjectCheck, outcome: Unreadable, now: datetime) -> bool:
    """True when this is a new problem for the project (then say so, once)."""
    if row.problem == outcome.problem:
        return False
    row.problem, row.problem_detail, row.problem_since = outcome.problem, outcome.what, now
    row.path_checked_at = None  # read the path again once it is readable
    return True


async def _unreadable(
    session: AsyncSession, row: ProjectCheck, outcome: Unreadable, now: datetime
) -> None:
    if _set_problem(row, outcome, now):
        log.warning(
            "project %s (%s) cannot be checked: %s",
            outcome.project_id,
            row.project_path,
            outcome.what,
        )
        if outcome.problem is Problem.LOST:
            row.episode += 1
            row.notices = 0
    if outcome.problem is not Problem.LOST:
        return
    if not row.notices or (row.last_notice_at and now - row.last_notice_at >= NOTICE_EVERY):
        row.notices += 1
        row.last_notice_at = now
    # Every check offers the current notice to every channel; its key lets each channel
    # have it once, so a channel that starts watching a lost project hears of it too.
    for channel in await _channels(session, outcome.project_id):
        await enqueue(
            session,
            key=f"lost:{outcome.project_id}:{row.episode}:{row.notices}:{channel}",
            kind=MessageKind.NOTICE,
            channel_id=channel,
            payload={
                "notice": "project_lost",
                "project_path": row.project_path,
                "what": outcome.what,
                "repeat": row.notices > 1,
            },
        )


async def _channels(session: AsyncSession, project_id: int) -> list[str]:
    return list(
        (
            await session.scalars(
                select(Subscription.channel_id).where(
                    Subscription.project_id == project_id, Subscription.broken_at.is_(None)
                )
            )
        ).all()
    )


async def _renamed(session: AsyncSession, project_id: int, path: str) -> None:
    """A moved project keeps its id: the watching channels see its new path."""
    await session.execute(
        update(Subscription)
        .where(Subscription.project_id == project_id, Subscription.project_path != path)
        .values(project_path=path)
    )
    await session.execute(
        update(MirrorState)
        .where(MirrorState.project_id == project_id, MirrorState.project_path != path)
        .values(project_path=path)
    )


@dataclass(frozen=True)
class UncheckedProject:
    project_id: int
    project_path: str
    problem: Problem
    what: str
    since: datetime | None


async def unchecked(
    sessions: async_sessionmaker[AsyncSession], project_ids: list[int]
) -> list[UncheckedProject]:
    """Of these projects, the ones the monitor could not check last time, and why."""
    if not project_ids:
        return []
    async with sessions() as session:
        rows = (
            await session.scalars(
                select(ProjectCheck)
                .where(ProjectCheck.project_id.in_(project_ids), ProjectCheck.problem.is_not(None))
                .order_by(ProjectCheck.project_path)
            )
        ).all()
    return [
        UncheckedProject(
            r.project_id,
            r.project_path,
            Problem(str(r.problem)),
            r.problem_detail or "",
            r.problem_since,
        )
        for r in rows
    ]


async def problem_counts(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    """Watched projects the monitor cannot check now, by problem (for /metrics)."""
    async with sessions() as session:
        rows = await session.execute(
            select(ProjectCheck.problem, func.count())
            .where(
                ProjectCheck.problem.is_not(None),
                ProjectCheck.project_id.in_(select(Subscription.project_id)),
            )
            .group_by(ProjectCheck.problem)
        )
        counts = {str(problem): int(count) for problem, count in rows.all()}
    return {problem.value: counts.get(problem.value, 0) for problem in Problem}
