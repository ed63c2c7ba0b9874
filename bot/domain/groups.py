"""Group subscriptions: a channel watching every project of a group and its subgroups.

`watch GROUP/` lists the group's projects with the caller's own token (only those where it
has the Maintainer role, whose mirrors it can read) and subscribes the channel to each. A
discovery pass lists them again with the same person's token, so projects added later are
watched and projects that left (or that the person can no longer read) stop being
watched. When that person's token can no longer list the group at all (their link gone,
the group out of their reach), the channel is told once, and again when it works. A
project the channel also watches directly keeps that one subscription: alerts
go once per channel however a project is watched.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domain import audit
from bot.domain.accounts import SlackUser
from bot.domain.errors import LinkBroken, NotLinked, TokenNotUsable
from bot.domain.outbox import MessageKind, enqueue
from bot.gitlab import errors
from bot.gitlab.client import GitLabClient
from bot.gitlab.models import MAINTAINER, Project
from bot.gitlab.refs import GroupRef
from bot.store.db import transaction
from bot.store.models import GroupSubscription, Subscription, utcnow

log = logging.getLogger(__name__)

# A person's GitLab client, paced by that token's share of the request budget.
ClientFor = Callable[[SlackUser], Awaitable[GitLabClient]]


@dataclass(frozen=True)
class GroupWatch:
    channel_id: str
    group_id: int
    group_path: str
    project_count: int
    created_by: str


@dataclass
class DiscoveryResult:
    groups: int = 0
    added: int = 0
    removed: int = 0
    problems: list[str] = field(default_factory=list)


async def watch_group(
    sessions: async_sessionmaker[AsyncSession],
    gitlab: GitLabClient,
    ref: GroupRef,
    *,
    team_id: str,
    channel_id: str,
    user_id: str,
    channel_name: str | None = None,
) -> GroupWatch:
    """Subscribe the channel to the group (the channel was checked already)."""
    group = await gitlab.get_group(ref)
    projects = await gitlab.list_group_projects(
        GroupRef(str(group.id)), min_access_level=MAINTAINER
    )
    async with transaction(sessions) as session:
        row = await session.scalar(
            select(GroupSubscription).where(
                GroupSubscription.channel_id == channel_id, GroupSubscription.group_id == group.id
            )
        )
        if row is None:
            row = GroupSubscription(
                slack_team_id=team_id,
                channel_id=channel_id,
                group_id=group.id,
                group_path=group.full_path,
                created_by=user_id,
            )
            session.add(row)
            await session.flush()
            audit.record(
                session,
                actor=user_id,
                event=audit.AuditEvent.EXECUTED,
                operation=audit.Action.WATCH,
                project=f"{group.full_path}/",
                channel=channel_id,
            )
        row.group_path = group.full_path
        row.created_by = user_id  # whose token discovery reads with from now on
        if row.problem is not None:  # taken over by someone who can list it
            await _can_list_again(session, row)
        await _follow(session, row, projects, channel_name)
        count = await _project_count(session, row.id)
    return GroupWatch(channel_id, group.id, group.full_path, count, user_id)


async def unwatch_group(
    sessions: async_sessionmaker[AsyncSession], channel_id: str, ref: GroupRef, *, by: str
) -> GroupWatch | None:
    """End the group subscription and the project subscriptions it added."""
    path = ref.value.strip("/")
    async with transaction(sessions) as session:
        condition = (
            GroupSubscription.group_id == int(path)
            if path.isdigit()
            else GroupSubscription.group_path == path
        )
        row = await session.scalar(
            select(GroupSubscription).where(GroupSubscription.channel_id == channel_id, condition)
        )
        if row is None:
            return None
        count = await _project_count(session, row.id)
        await session.execute(
            delete(Subscription).where(Subscription.group_subscription_id == row.id)
        )
        await session.delete(row)
        audit.record(
            session,
            actor=by,
            event=audit.AuditEvent.EXECUTED,
            operation=audit.Action.UNWATCH,
            project=f"{row.group_path}/",
            channel=channel_id,
        )
        return GroupWatch(channel_id, row.group_id, row.group_path, count, row.created_by)


async def group_watches(
    sessions: async_sessionmaker[AsyncSession], channel_id: str
) -> list[GroupWatch]:
    async with sessions() as session:
        rows = (
            await session.scalars(
                select(GroupSubscription)
                .where(GroupSubscription.channel_id == channel_id)
                .order_by(GroupSubscription.group_path)
            )
        ).all()
        return [
            GroupWatch(
                r.channel_id,
                r.group_id,
                r.group_path,
                await _project_count(session, r.id),
                r.created_by,
            )
            for r in rows
        ]


async def group_watches_of(
    sessions: async_sessionmaker[AsyncSession], channel_ids: list[str]
) -> list[GroupWatch]:
    return [w for channel in channel_ids for w in await group_watches(sessions, channel)]


async def discover(
    sessions: async_sessionmaker[AsyncSession], client_for: ClientFor
) -> DiscoveryResult:
    """One discovery pass: each group subscription's projects listed again, as its
    watcher's token sees them. One group's trouble never stops the others."""
    result = DiscoveryResult()
    async with sessions() as session:
        rows = (
            await session.scalars(select(GroupSubscription).order_by(GroupSubscription.id))
        ).all()
    for row in rows:
        try:
            gitlab = await client_for(SlackUser(row.slack_team_id, row.created_by))
            projects = await gitlab.list_group_projects(
                GroupRef(str(row.group_id)), min_access_level=MAINTAINER
            )
        except Exception as exc:  # one group's trouble (a lost link, a 404): next pass retries
            words = getattr(exc, "user_message", None) or type(exc).__name__
            result.problems.append(f"group {row.group_path}: {words}")
            if not lasting(exc):
                log.warning(
                    "group discovery of %s failed (next pass retries): %s", row.group_path, words
                )
            elif await _cannot_list(sessions, row.id, row.created_by, words):  # told once
                log.warning("group discovery of %s stopped: %s", row.group_path, words)
            continue
        async with transaction(sessions) as session:
            current = await session.get(GroupSubscription, row.id)
            if current is None or current.created_by != row.created_by:
                continue  # unwatched, or taken over by someone else meanwhile: next pass
            added, removed = await _follow(session, current, projects, None)
            current.discovered_at = utcnow()
            if current.problem is not None:
                await _can_list_again(session, current)
        result.groups += 1
        result.added += added
        result.removed += removed
    return result


def lasting(exc: Exception) -> bool:
    """A failure that the next pass will meet too, until someone acts: the watcher's link
    or token is gone or refused, or the group is out of their reach. GitLab being slow,
    down or rate-limiting passes by itself, and only the log hears of it."""
    return isinstance(
        exc,
        NotLinked
        | LinkBroken
        | TokenNotUsable
        | errors.TokenRejected
        | errors.InsufficientScope
        | errors.InsufficientRole
        | errors.GroupNotFound,
    )


async def _cannot_list(
    sessions: async_sessionmaker[AsyncSession],
    group_subscription_id: int,
    watcher: str,
    what: str,
) -> bool:
    """Tell the channel once per episode (True when this call told it): its projects are
    still checked, but new ones are no longer found and departed ones no longer dropped."""
    async with transaction(sessions) as session:
        row = await session.get(GroupSubscription, group_subscription_id)
        if row is None or row.problem is not None:  # unwatched, or told already
            return False
        if row.created_by != watcher:  # taken over meanwhile: the failure was the old token's
            return False
        row.problem, row.problem_since = what, utcnow()
        await enqueue(
            session,
            key=_episode_key("group_unlisted", row),
            kind=MessageKind.NOTICE,
            channel_id=row.channel_id,
            payload={
                "notice": "group_unlisted",
                "group_path": row.group_path,
                "watcher": row.created_by,
                "what": what,
            },
        )
    return True


def _episode_key(kind: str, row: GroupSubscription) -> str:
    """A notice's outbox key, unique for ever: a re-created watch may get the id of a
    deleted one (SQLite reuses the highest), and its episodes count from 0 again."""
    assert row.problem_since is not None
    return f"{kind}:{row.channel_id}:{row.group_id}:{row.problem_since.isoformat()}"


async def _can_list_again(session: AsyncSession, row: GroupSubscription) -> None:
    log.info("group discovery of %s works again", row.group_path)
    key = _episode_key("group_listed", row)
    row.problem = row.problem_since = None
    await enqueue(
        session,
        key=key,
        kind=MessageKind.NOTICE,
        channel_id=row.channel_id,
        payload={"notice": "group_listed", "group_path": row.group_path},
    )


async def _follow(
    session: AsyncSession,
    row: GroupSubscription,
    projects: list[Project],
    channel_name: str | None,
) -> tuple[int, int]:
    """Make the channel's subscriptions from this group match `projects`."""
    wanted = {p.id: p.path_with_namespace for p in projects}
    existing = {
        s.project_id: s
        for s in (
            await session.scalars(
                select(Subscription).where(Subscription.channel_id == row.channel_id)
            )
        ).all()
    }
    added = removed = 0
    for project_id, path in wanted.items():
        subscription = existing.get(project_id)
        if subscription is None:
            session.add(
                Subscription(
                    slack_team_id=row.slack_team_id,
                    channel_id=row.channel_id,
                    project_id=project_id,
                    project_path=path,
                    created_by=row.created_by,
                    channel_name=channel_name,
                    group_subscription_id=row.id,
                )
            )
            added += 1
        elif subscription.group_subscription_id == row.id:
            subscription.project_path = path
    for project_id, subscription in existing.items():
        if subscription.group_subscription_id == row.id and project_id not in wanted:
            await session.delete(subscription)
            removed += 1
    return added, removed


async def _project_count(session: AsyncSession, group_subscription_id: int) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(Subscription)
        .where(Subscription.group_subscription_id == group_subscription_id)
    )
    return int(count or 0)
