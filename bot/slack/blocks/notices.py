"""Notices: the bot telling people it cannot do its job, and how to fix it (pure).

A channel that refuses the bot's posts (to the person who set up its subscriptions), and
a watched project the service token can no longer read, and a watched group its watcher's
token can no longer list (to the watching channel)."""

from __future__ import annotations

from typing import Any

from bot.slack.blocks import fleet
from bot.slack.blocks.text import SlackMessage, context, escape, section

# Slack's refusals as a person would say them.
CHANNEL_REFUSALS = {
    "is_archived": "the channel was archived",
    "channel_not_found": "the channel was deleted, or it is private and I was removed from it",
    "not_in_channel": "I am no longer a member of the channel",
    "restricted_action": "the channel does not let me post",
    "restricted_action_read_only_channel": "the channel is read-only",
    "team_access_not_granted": "the channel belongs to a workspace I am not installed in",
}


def channel_refusal(reason: str | None) -> str:
    return CHANNEL_REFUSALS.get(reason or "", f"Slack refuses my posts there ({reason})")


def channel_shown(channel_id: str, channel_name: str | None) -> str:
    return f"<#{channel_id}|{channel_name}>" if channel_name else f"<#{channel_id}>"


def render_notice(payload: dict[str, Any]) -> SlackMessage:
    notice = payload.get("notice")
    if notice == "channel_broken":
        return channel_broken(payload)
    if notice == "project_lost":
        return project_lost(payload)
    if notice == "digest":
        return fleet.digest(payload)
    if notice == "group_unlisted":
        return group_unlisted(payload)
    if notice == "group_listed":
        return group_listed(payload)
    return project_readable(payload)


def channel_broken(payload: dict[str, Any]) -> SlackMessage:
    channel = channel_shown(payload["channel_id"], payload.get("channel_name"))
    projects: list[str] = payload.get("projects") or []
    named = ", ".join(f"*{escape(p)}*" for p in projects[:20])
    if len(projects) > 20:
        named += f" and {len(projects) - 20} more"
    example = escape(projects[0]) if projects else "PROJECT"
    text = (
        f":warning: I can no longer post the mirror alerts of {named} in {channel}: "
        f"{channel_refusal(payload.get('reason'))}. Until it is fixed, nobody there hears "
        "about failing mirrors."
    )
    fix = (
        f"Fix: invite me back (`/invite @Mirrorbot` in that channel) and run "
        f"`/mirror watch {example}` there again — or watch it elsewhere: "
        f"`/mirror watch {example} #another-channel`."
    )
    return SlackMessage(
        f"Mirror alerts cannot be posted in {channel}", [section(text), context(fix)]
    )


def project_lost(payload: dict[str, Any]) -> SlackMessage:
    project = escape(payload["project_path"])
    repeat = " (still)" if payload.get("repeat") else ""
    text = (
        f":warning: I cannot check the mirrors of *{project}* any more{repeat}: "
        f"{escape(payload.get('what') or 'GitLab refuses the service token')}. "
        "Its mirror alerts have stopped."
    )
    fix = (
        "Fix: give the service user (GITLAB_SERVICE_TOKEN) the Maintainer role on the "
        f"project, or stop watching it: `/mirror unwatch {project}`."
    )
    return SlackMessage(
        f"Mirror alerts stopped for {payload['project_path']}",
        [
            section(text),
            context(fix),
        ],
    )


def project_readable(payload: dict[str, Any]) -> SlackMessage:
    project = escape(payload["project_path"])
    return SlackMessage(
        f"Mirror alerts resumed for {payload['project_path']}",
        [
            section(
                f":white_check_mark: I can check the mirrors of *{project}* again: its "
                "alerts are back on."
            )
        ],
    )


def group_unlisted(payload: dict[str, Any]) -> SlackMessage:
    group = escape(payload["group_path"])
    text = (
        f":warning: I can no longer list the projects of the group *{group}/* with "
        f"<@{payload['watcher']}>'s GitLab account: "
        f"{escape(payload.get('what') or 'GitLab refuses it')}. The projects already "
        "watched here are still checked, but projects added to the group are not watched "
        "and projects that left it are not dropped."
    )
    fix = (
        f"Fix: <@{payload['watcher']}> links their account again (`/mirror login`), or "
        f"another Maintainer of the group runs `/mirror watch {group}/` here to take it over."
    )
    return SlackMessage(
        f"The projects of {payload['group_path']}/ can no longer be listed",
        [section(text), context(fix)],
    )


def group_listed(payload: dict[str, Any]) -> SlackMessage:
    group = escape(payload["group_path"])
    return SlackMessage(
        f"The projects of {payload['group_path']}/ are followed again",
        [
            section(
                f":white_check_mark: I can list the projects of *{group}/* again: projects "
                "added to it are watched here, and projects that left it dropped."
            )
        ],
    )
