"""The App Home tab: the user's link and the health of the mirrors their channels watch."""

from __future__ import annotations

from typing import Any

from bot.commands.actions import MirrorActions, MirrorRef
from bot.domain.accounts import AccountLink
from bot.domain.fleet import ChannelHealth
from bot.domain.subscriptions import MirrorObservation, SubscriptionInfo
from bot.slack.blocks.mirrors import observation_line
from bot.slack.blocks.notices import channel_refusal, channel_shown
from bot.slack.blocks.text import (
    actions,
    button,
    confirm_dialog,
    context,
    escape,
    section,
)

MAX_VIEW_BLOCKS = 100
HEADER_BLOCKS = 7


def home_view(
    link: AccountLink | None,
    observations: list[MirrorObservation],
    watched_projects: int,
    broken: list[SubscriptionInfo] | None = None,
    channels: list[ChannelHealth] | None = None,
) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Mirrorbot"}}
    ]
    if link is None:
        blocks.append(
            section(
                ":link: You have not linked a GitLab account. Type "
                "`/mirror login` in any channel to link yours."
            )
        )
    else:
        note = " (read-only token)" if link.read_only else ""
        blocks.append(
            section(
                f":white_check_mark: Linked to GitLab user *{escape(link.gitlab_username)}*{note}."
            )
        )
    if broken:
        lines = "\n".join(
            f"• *{escape(b.project_path)}* → {channel_shown(b.channel_id, b.channel_name)}: "
            f"{channel_refusal(b.broken_reason)}"
            for b in broken[:20]
        )
        blocks.append(section(f":warning: *Alerts that cannot be delivered*\n{lines}"))
        blocks.append(
            context(
                "Invite me back (`/invite @Mirrorbot`) and run `/mirror watch PROJECT` there "
                "again, or watch the project in another channel."
            )
        )
    rows = sorted(observations, key=lambda o: (not o.is_failing, o.project_path, o.mirror_key))
    failing = sum(1 for o in rows if o.is_failing)
    stale = sum(c.stale for c in channels or [])
    disabled = sum(1 for o in rows if not o.enabled)
    blocks.append(
        section(
            f"*Mirror health* — {len(rows)} mirrors of {watched_projects} "
            f"project{'s' if watched_projects != 1 else ''} your channels "
            f"watch, {failing} failing, {stale} stale, {disabled} disabled"
        )
    )
    if channels:
        blocks.append(section(_fleet_lines(channels)))
    if not rows:
        blocks.append(
            context(
                "No watched mirrors yet: `/mirror watch group/project` in a "
                "channel subscribes it to alerts."
            )
        )
    room = (MAX_VIEW_BLOCKS - HEADER_BLOCKS - 1) // 2
    for observation in rows[:room]:
        blocks.append(section(observation_line(observation, detailed=True)))
        blocks.append(
            actions(
                f"home-{observation.project_id}-{observation.mirror_key}",
                *observation_buttons(observation),
            )
        )
    if len(rows) > room:
        blocks.append(context(f"{len(rows) - room} more mirrors: `/mirror status` lists them all"))
    return {"type": "home", "blocks": blocks}


MAX_CHANNEL_LINES = 15


def _fleet_lines(channels: list[ChannelHealth]) -> str:
    """Each channel of the person's, the one with the most failing mirrors first."""
    lines = []
    for c in channels[:MAX_CHANNEL_LINES]:
        mark = ":red_circle:" if c.failing else ":large_green_circle:"
        groups = f" · groups {', '.join(escape(g) + '/' for g in c.groups)}" if c.groups else ""
        lines.append(
            f"{mark} {channel_shown(c.channel_id, c.channel_name)} — *{c.failing} failing*, "
            f"{c.stale} stale, {c.disabled} disabled of {c.mirrors} mirrors in "
            f"{c.projects} projects{groups}"
        )
    if len(channels) > MAX_CHANNEL_LINES:
        lines.append(f"…and {len(channels) - MAX_CHANNEL_LINES} more channels")
    return "*By channel*\n" + "\n".join(lines)


def observation_buttons(o: MirrorObservation) -> list[dict[str, Any]]:
    value = MirrorRef(project_id=o.project_id, mirror_id=o.mirror_id).dump()
    if o.mirror_id is None:
        return [button("Start pull", MirrorActions.PULL_SYNC, value, "primary")]
    toggle = (
        button("Disable", MirrorActions.DISABLE, value)
        if o.enabled
        else button("Enable", MirrorActions.ENABLE, value)
    )
    return [
        button("Sync now", MirrorActions.SYNC, value, "primary"),
        toggle,
        button("Details", MirrorActions.DETAILS, value),
        button(
            "Delete",
            MirrorActions.DELETE,
            value,
            "danger",
            confirm_dialog(
                "Delete this mirror?", f"Push mirror {o.mirror_id} will be removed.", "Delete"
            ),
        ),
    ]
