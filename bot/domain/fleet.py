"""The fleet at a glance: per channel, how many mirrors are failing, stale and disabled."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.domain.groups import GroupWatch
from bot.domain.subscriptions import MirrorObservation, SubscriptionInfo


@dataclass(frozen=True)
class ChannelHealth:
    channel_id: str
    channel_name: str | None
    projects: int
    mirrors: int
    failing: int
    stale: int
    disabled: int
    groups: tuple[str, ...]  # group paths the channel watches


def is_stale(o: MirrorObservation, stale_after: timedelta, now: datetime) -> bool:
    success = o.last_successful_update_at
    return o.enabled and not o.is_failing and success is not None and now - success > stale_after


def channel_health(
    subscriptions: Iterable[SubscriptionInfo],
    observations: Iterable[MirrorObservation],
    groups: Iterable[GroupWatch],
    *,
    stale_after: timedelta,
    now: datetime,
) -> list[ChannelHealth]:
    """One line per channel, the channels with the most failing mirrors first."""
    by_project: dict[int, list[MirrorObservation]] = {}
    for o in observations:
        by_project.setdefault(o.project_id, []).append(o)
    projects: dict[str, set[int]] = {}
    names: dict[str, str | None] = {}
    for s in subscriptions:
        projects.setdefault(s.channel_id, set()).add(s.project_id)
        names[s.channel_id] = names.get(s.channel_id) or s.channel_name
    watched_groups: dict[str, list[str]] = {}
    for g in groups:
        watched_groups.setdefault(g.channel_id, []).append(g.group_path)
    found = []
    for channel, ids in projects.items():
        seen = [o for pid in ids for o in by_project.get(pid, [])]
        found.append(
            ChannelHealth(
                channel,
                names.get(channel),
                len(ids),
                len(seen),
                sum(o.is_failing for o in seen),
                sum(is_stale(o, stale_after, now) for o in seen),
                sum(not o.enabled for o in seen),
                tuple(sorted(watched_groups.get(channel, []))),
            )
        )
    return sorted(found, key=lambda c: (-c.failing, -c.stale, c.channel_name or c.channel_id))
