"""Checking watched projects: the periodic scan and the checks a push schedules.

GitLab fires no webhook when a mirror fails, so the monitor polls every watched project
with the service token, at most `concurrency` at a time and within a requests-per-minute
budget. A push schedules extra checks, because push mirrors update after the push.

Most projects have push mirrors or a pull mirror, rarely both, and some have none: a scan
reads only what a project was seen to have (`MirrorPresence`), and looks again for what it
lacks every Nth scan, spread over the projects by id. Checks outside the scan (a push's,
`status --refresh`) read everything.

Pull mirrors' states come by GraphQL, 100 projects a request (`Project.detailedImportStatus`,
the project's import state), for the projects a scan needs them of. GraphQL cannot tell a
pull mirror from a one-time import or a disabled pull mirror (all three have an import
state), so it is combined with what REST taught: no import state, no pull mirror (no REST
read); an import state where REST saw a pull mirror is that mirror's state; an import state
REST has not yet seen as a pull mirror is read by REST to learn. The every-Nth-scan re-check
still reads the pull mirror by REST, so a mirror disabled in GitLab stops being watched then.
Where GraphQL is refused, the scan reads pull mirrors by REST as before.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
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
from bot.gitlab import errors
from bot.gitlab.client import GitLabClient
from bot.gitlab.models import ImportState, PullMirror, PushMirror
from bot.gitlab.refs import ProjectRef
from bot.store.db import transaction
from bot.store.models import (
    MirrorPresence,
    MonitorScans,
    ScheduledCheck,
    Subscription,
    utcnow,
)

log = logging.getLogger(__name__)


@dataclass
class ScanResult:
    checked: int = 0
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    skipped: int = 0  # projects with no mirror, not due for a re-check: nothing read


@dataclass(frozen=True)
class Presence:
    """Which mirrors a project was last seen to have."""

    push: bool
    pull: bool


@dataclass(frozen=True)
class Reads:
    """What one check of one project asks GitLab for (by REST), and what a scan's GraphQL
    read already told of its pull mirror."""

    push: bool = True
    pull: bool = True
    pull_seen: PullMirror | None = None  # a known pull mirror's state, by GraphQL
    pull_absent: bool = False  # GraphQL showed no import state: no pull mirror

    @property
    def by_rest(self) -> bool:
        return self.push or self.pull


ALL = Reads()


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
    scan_number: int | None = None,
    recheck_every: int = 1,
    graphql: bool = True,
) -> ScanResult:
    """Read GitLab `concurrency` projects at a time; one writer applies what they saw in
    batches, as it arrives, so the database is never the bottleneck and a failure found
    early in a long scan alerts at once. A project that cannot be read is that project's
    problem (see project_access): the others are checked all the same. With a
    `scan_number`, a project is read only for the mirrors it has, except every
    `recheck_every`th scan, and (with `graphql`) its pull mirror's state comes by GraphQL
    (see the module's docstring)."""
    started = time.monotonic()
    result = ScanResult()
    projects = list(projects)
    limit = asyncio.Semaphore(concurrency)
    seen: asyncio.Queue[tuple[ProjectCheck | None, Readable | Unreadable] | None] = asyncio.Queue()
    read_path = await paths_to_check(sessions, (project_id for project_id, _ in projects))
    known = await presence_of(sessions, [project_id for project_id, _ in projects])
    learned: dict[int, Presence] = {}

    def rechecked(project_id: int) -> bool:
        """Read everything by REST: outside a scan, a project not yet learned, and every
        `recheck_every`th scan."""
        if scan_number is None or project_id not in known:
            return True
        return (scan_number + project_id) % recheck_every == 0

    def needs_import_state(project_id: int) -> bool:
        presence = known.get(project_id)
        # A known pull mirror between re-checks (its state), or a project whose pull mirror
        # REST would look for now (none: no REST read); not a known "none" between re-checks.
        return presence is None or presence.pull != rechecked(project_id)

    imports: dict[int, ImportState | None] = {}
    if scan_number is not None and graphql:
        imports = await import_states(
            gitlab, [project_id for project_id, _ in projects if needs_import_state(project_id)]
        )

    def reads_for(project_id: int) -> Reads:
        presence = known.get(project_id)
        everything = rechecked(project_id)
        push = everything or bool(presence and presence.push)
        pull = everything or bool(presence and presence.pull)
        if project_id in imports:
            state = imports[project_id]
            if state is None and presence is not None and presence.pull:
                # REST saw a pull mirror, which always has an import state: an odd answer,
                # so REST is asked, this scan, rather than the mirror dropped until its re-check.
                return Reads(push=push, pull=True)
            if state is None:
                return Reads(push=push, pull=False, pull_absent=True)
            if pull and not everything:  # REST saw a pull mirror: this is its state
                return Reads(push=push, pull=False, pull_seen=state.as_pull_mirror())
        return Reads(push=push, pull=pull)

    async def read(project_id: int, known_path: str | None) -> None:
        path = None if project_id in read_path else known_path
        reads = reads_for(project_id)
        presence_before = known.get(project_id)
        vanished = reads.pull_absent and presence_before is not None and presence_before.pull
        if not (reads.by_rest or reads.pull_seen or vanished):
            result.skipped += 1
            return
        async with limit:
            try:
                path, push, pull, presence = await observe_mirrors(
                    gitlab, project_id, path, reads, presence_before
                )
            except Exception as exc:  # one project's trouble never ends the scan
                problem = unreadable(project_id, known_path or str(project_id), exc)
                words = problem.what if problem else getattr(exc, "user_message", repr(exc))
                result.problems.append(f"project {project_id}: {words}")
                if problem is None:  # passing (429, 5xx, timeout): the next scan tries again
                    log.warning("could not check project %s: %s", project_id, words)
                else:
                    await seen.put((None, problem))
                return
        if presence != known.get(project_id):
            learned[project_id] = presence
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
            if learned:
                await record_presence(sessions, _drained(learned))

    writer = asyncio.create_task(write())
    try:
        await asyncio.gather(*(read(project_id, path) for project_id, path in projects))
    finally:
        await seen.put(None)
        await writer
    result.seconds = time.monotonic() - started
    return result


async def observe_mirrors(
    gitlab: GitLabClient,
    project_id: int,
    path: str | None,
    reads: Reads = ALL,
    known: Presence | None = None,
) -> tuple[str, list[PushMirror], PullMirror | None, Presence]:
    """Read what `reads` asks for, at once; what is not read is as last seen (absent).
    Returns the path (read first when not given), the mirrors, and what was learned."""
    if path is None:
        path = (await gitlab.get_project(ProjectRef(str(project_id)))).path_with_namespace
    ref = ProjectRef.of(project_id, path)
    no_push: list[PushMirror] = []

    async def none() -> None:
        return None

    push_read, pull_read = await asyncio.gather(
        gitlab.list_push_mirrors(ref) if reads.push else _as_is(no_push),
        _pull_mirror(gitlab, ref) if reads.pull else none(),
        return_exceptions=True,
    )
    for outcome in (push_read, pull_read):
        if isinstance(outcome, BaseException):
            raise outcome
    assert not isinstance(push_read, BaseException)
    assert not isinstance(pull_read, BaseException)
    push = push_read
    pull, has_pull = pull_read if reads.pull and pull_read is not None else (None, None)
    if reads.pull_seen is not None:
        pull, has_pull = reads.pull_seen, True
    elif reads.pull_absent:
        has_pull = False
    presence = Presence(
        push=bool(push) if reads.push else bool(known and known.push),
        pull=has_pull if has_pull is not None else bool(known is None or known.pull),
    )
    return path, push, pull, presence


async def _as_is(value: list[PushMirror]) -> list[PushMirror]:
    return value


async def _pull_mirror(
    gitlab: GitLabClient, ref: ProjectRef
) -> tuple[PullMirror | None, bool | None]:
    """The pull mirror and whether the project has one (None: GitLab would not say)."""
    try:
        return await gitlab.get_pull_mirror(ref), True
    except errors.PullMirrorNotConfigured:
        return None, False
    except errors.InsufficientRole:
        return None, None
    except errors.ProjectNotFound:
        raise
    except errors.GitLabError as exc:
        if exc.status == 404:  # no pull-mirror route at all (GitLab's free edition)
            return None, False
        raise


_graphql_refused = False  # said once per outage, not once per scan


async def import_states(
    gitlab: GitLabClient, project_ids: list[int]
) -> dict[int, ImportState | None]:
    """The projects' import states by GraphQL; none (REST reads pull mirrors, as without
    GraphQL) where GitLab refuses or fails it."""
    global _graphql_refused
    if not project_ids:
        return {}
    try:
        found = await gitlab.list_import_states(project_ids)
    except errors.GitLabError as exc:
        if not _graphql_refused:
            log.warning("pull mirrors are read by REST: GraphQL failed (%s)", exc.user_message)
        _graphql_refused = True
        return {}
    if _graphql_refused:
        log.info("pull mirrors' states are read by GraphQL again")
    _graphql_refused = False
    return found


def _drained(learned: dict[int, Presence]) -> dict[int, Presence]:
    taken = dict(learned)
    learned.clear()
    return taken


async def presence_of(
    sessions: async_sessionmaker[AsyncSession], project_ids: list[int]
) -> dict[int, Presence]:
    found: dict[int, Presence] = {}
    async with sessions() as session:
        for start in range(0, len(project_ids), 500):
            rows = await session.execute(
                select(
                    MirrorPresence.project_id,
                    MirrorPresence.has_push_mirrors,
                    MirrorPresence.has_pull_mirror,
                ).where(MirrorPresence.project_id.in_(project_ids[start : start + 500]))
            )
            for project_id, push, pull in rows.all():
                found[project_id] = Presence(push=push, pull=pull)
    return found


async def record_presence(
    sessions: async_sessionmaker[AsyncSession], learned: dict[int, Presence]
) -> None:
    """Store what checks learned (a row per project, replaced)."""
    if not learned:
        return
    now = utcnow()
    async with transaction(sessions) as session:
        dialect = session.bind.dialect.name if session.bind else "sqlite"
        insert = postgres_insert if dialect == "postgresql" else sqlite_insert
        statement = insert(MirrorPresence)
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[MirrorPresence.project_id],
                set_={
                    "has_push_mirrors": statement.excluded.has_push_mirrors,
                    "has_pull_mirror": statement.excluded.has_pull_mirror,
                    "learned_at": statement.excluded.learned_at,
                },
            ),
            [
                {
                    "project_id": project_id,
                    "has_push_mirrors": presence.push,
                    "has_pull_mirror": presence.pull,
                    "learned_at": now,
                }
                for project_id, presence in sorted(learned.items())
            ],
        )


async def forget_presence(session: AsyncSession, project_id: int) -> None:
    """A mirror was just added or configured here: the next scan reads everything."""
    await session.execute(delete(MirrorPresence).where(MirrorPresence.project_id == project_id))


async def next_scan_number(sessions: async_sessionmaker[AsyncSession]) -> int:
    """Count one more full scan, in the database: restarts and a new leader go on from it."""
    for attempt in range(3):
        try:
            async with transaction(sessions) as session:
                result = await session.execute(
                    update(MonitorScans)
                    .where(MonitorScans.name == "monitor")
                    .values(scans=MonitorScans.scans + 1)
                    .returning(MonitorScans.scans)
                )
                counted = result.scalar_one_or_none()
                if counted is None:
                    session.add(MonitorScans(name="monitor", scans=1))
                    return 1
                return int(counted)
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def scan(
    sessions: async_sessionmaker[AsyncSession],
    gitlab: GitLabClient,
    *,
    concurrency: int,
    remind_after: timedelta,
    recheck_every: int = 1,
    graphql: bool = True,
) -> ScanResult:
    projects = await watched_projects(sessions)
    return await check_projects(
        sessions,
        gitlab,
        projects.items(),
        concurrency=concurrency,
        remind_after=remind_after,
        scan_number=await next_scan_number(sessions),
        recheck_every=recheck_every,
        graphql=graphql,
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
