"""Alert messages from outbox payloads (plain JSON the alert state machine wrote)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.commands.actions import AlertActions, MirrorActions, MirrorRef, RotationActions
from bot.domain.causes import (
    AUTHENTICATION,
    HOST_KEY,
    STOPPED,
    UNKNOWN,
    Cause,
    cause_named,
    classify,
)
from bot.domain.outbox import MessageKind
from bot.domain.subscriptions import PULL_KEY
from bot.slack.blocks.notices import render_notice
from bot.slack.blocks.text import (
    SlackMessage,
    actions,
    button,
    code,
    context,
    escape,
    prose,
    section,
    shorten,
    slack_ago,
    slack_date,
)


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _mirror_name(payload: dict[str, Any]) -> str:
    key = payload["mirror_key"]
    return "pull mirror" if key == PULL_KEY else f"push mirror {key.removeprefix('push:')}"


def _mirror_id(payload: dict[str, Any]) -> int | None:
    key = payload["mirror_key"]
    return None if key == PULL_KEY else int(key.removeprefix("push:"))


def render_outbox(kind: MessageKind, payload: dict[str, Any]) -> SlackMessage:
    if kind is MessageKind.NOTICE:
        return render_notice(payload)
    if kind is MessageKind.ALERT_REMINDER:
        return reminder(payload)
    if kind is MessageKind.ALERT_RECOVERY:
        return recovery(payload)
    return alert(payload)


def alert(payload: dict[str, Any]) -> SlackMessage:
    """The alert message; its state (failing, recovered, disabled, deleted) decides the look."""
    project = escape(payload["project_path"])
    name = _mirror_name(payload)
    url = code(payload.get("url") or "?")
    state = payload["state"]
    since = slack_date(_when(payload.get("failing_since")))
    if state != "failing":
        how = {
            "recovered": ":white_check_mark: Resolved: the mirror recovered",
            "disabled": ":black_circle: Resolved: the mirror was disabled",
            "deleted": ":wastebasket: Resolved: the mirror was deleted",
        }[state]
        text = f"{how} — {name} of *{project}* {url}"
        return SlackMessage(
            f"Resolved: {name} of {payload['project_path']}",
            [
                section(text),
                context(
                    f"Was failing since {since} · resolved "
                    f"{slack_date(_when(payload.get('observed_at')))}"
                ),
            ],
        )
    cause: Cause = cause_named(payload.get("cause")) or classify(payload.get("last_error"))
    error = escape(shorten(payload.get("last_error") or "no error text from GitLab", 1500))
    lines = [
        f":rotating_light: *Mirror failing* — {name} of *{project}*",
        url,
        f"Failing since {since} · last success "
        f"{slack_ago(_when(payload.get('last_successful_update_at')))}",
    ]
    if cause is not UNKNOWN:
        lines.append(f"*Likely cause: {cause.title}.* {cause.fix}")
    blocks = [
        section("\n".join(lines)),
        section(f"```{error}```"),
        actions(f"alert-{payload['mirror_key']}", *alert_buttons(payload)),
    ]
    return SlackMessage(f"Mirror failing: {name} of {payload['project_path']}", blocks)


def alert_buttons(payload: dict[str, Any]) -> list[dict[str, Any]]:
    mirror_id = _mirror_id(payload)
    value = MirrorRef(project_id=payload["project_id"], mirror_id=mirror_id).dump()
    if mirror_id is None:
        stopped = payload.get("cause") == STOPPED.key  # only a started pull resumes it
        return [
            button(
                "Pull sync" if stopped else "Retry sync", MirrorActions.PULL_SYNC, value, "primary"
            ),
            button("Mute 24 h", AlertActions.MUTE, value),
        ]
    buttons = [button("Retry sync", MirrorActions.SYNC, value, "primary")]
    # The fix, one click away: both re-create the mirror (bot/domain/rotations.py).
    cause = classify(payload.get("last_error"))
    if cause is AUTHENTICATION:
        buttons.append(button("Rotate credentials", RotationActions.ROTATE, value, "primary"))
    elif cause is HOST_KEY:
        buttons.append(
            button("Re-create (new host keys)", RotationActions.RECREATE, value, "primary")
        )
    return [
        *buttons,
        button("Disable", MirrorActions.DISABLE, value),
        button("Mute 24 h", AlertActions.MUTE, value),
        button("Details", MirrorActions.DETAILS, value),
    ]


def reminder(payload: dict[str, Any]) -> SlackMessage:
    since = slack_date(_when(payload.get("failing_since")))
    error = prose(shorten(payload.get("last_error") or "", 300))
    return SlackMessage(
        f"Still failing: {_mirror_name(payload)} of {payload['project_path']}",
        [section(f":alarm_clock: Still failing since {since}: {error}")],
    )


def recovery(payload: dict[str, Any]) -> SlackMessage:
    success = slack_date(_when(payload.get("last_successful_update_at")))
    return SlackMessage(
        f"Recovered: {_mirror_name(payload)} of {payload['project_path']}",
        [section(f":white_check_mark: Recovered — last successful update {success}.")],
    )
