"""A rotation's progress message: one message in the channel, re-rendered at each step."""

from __future__ import annotations

from typing import Any

from bot.commands.actions import RotationActions, RotationRef
from bot.commands.results import RotationProgress
from bot.domain.rotations import Rotation, State
from bot.slack.blocks.text import (
    SlackMessage,
    actions,
    button,
    code,
    context,
    escape,
    prose,
    section,
    slack_date,
)

_STEP = {
    State.AWAITING_APPROVAL: ":raised_hand: waiting for approval",
    State.REQUESTED: ":hourglass_flowing_sand: creating the new mirror…",
    State.CREATING: ":hourglass_flowing_sand: creating the new mirror…",
    State.CREATED: ":hourglass_flowing_sand: new mirror created…",
    State.AWAITING_KEY: ":key: new mirror created — install its key, then click *Key installed*",
    State.SYNCING: ":arrows_counterclockwise: syncing the new mirror; the old one stays until "
    "it finished",
    State.DELETING_OLD: ":white_check_mark: the new mirror synced; deleting the old one…",
    State.DELETING_NEW: ":x: the new mirror failed; deleting it, the old one is kept…",
    State.CLEANING_UP: ":broom: unfinished after a day; deleting the new mirror…",
}


def rotation_message(rotation: Rotation) -> SlackMessage:
    path = escape(rotation.project_path)
    who = f"<@{rotation.requester_id}>"
    old, new = rotation.old_mirror_id, rotation.new_mirror_id
    what = "re-creation (new key pair and host keys)" if rotation.ssh else "credential rotation"
    headline = f"*{what.capitalize()}* of push mirror {old} of *{path}*, asked by {who}"
    blocks: list[dict[str, Any]] = [section(f"{headline}\n{code(rotation.url)}")]
    state = rotation.state
    if state is State.DONE:
        status = (
            f":white_check_mark: *finished* — push mirror {new} synced with the new "
            f"{'key' if rotation.ssh else 'credentials'} and replaces {old}, which is deleted."
        )
    elif state is State.FAILED:
        kept = f"push mirror {old} is kept as it was"
        gone = f"the new mirror {new} was deleted; " if new else ""
        status = f":x: *failed* — {gone}{kept}. Why: {prose(rotation.result or 'unknown')}"
    elif state is State.EXPIRED:
        status = (
            f":broom: *cleaned up* — {prose(rotation.result or 'unfinished after a day')}: "
            f"{'the new mirror ' + str(new) + ' was deleted; ' if new else ''}"
            f"push mirror {old} is kept."
        )
    elif state is State.REFUSED:
        status = f":no_entry: *not done* — {prose(rotation.result or 'not approved')}"
    else:
        status = _STEP[state]
        if new:
            status += f" (new mirror {new})"
    blocks.append(section(status))
    if state is State.AWAITING_KEY and rotation.public_key:
        blocks.append(
            section(
                "Add this key as a deploy key *with write access* on the target, then click "
                f"the button (you or another Maintainer):\n```{escape(rotation.public_key)}```"
            )
        )
        blocks.append(
            actions(
                f"rotation-{rotation.id}",
                button(
                    "Key installed — switch",
                    RotationActions.KEY_INSTALLED,
                    RotationRef(rotation_id=rotation.id).dump(),
                    "primary",
                ),
            )
        )
        blocks.append(context(f"Unfinished by {slack_date(rotation.expires_at)}, it is undone."))
    elif not rotation.finished:
        blocks.append(context("The old mirror is deleted only once the new one has synced."))
    return SlackMessage(
        f"rotation of push mirror {old} of {rotation.project_path}: {state.value}", blocks
    )


def rotation_progress(reply: RotationProgress) -> SlackMessage:
    return rotation_message(reply.rotation)


def rotation_expired_notice(rotation: Rotation) -> SlackMessage:
    """To the requester, in a direct message, when a day passed without the switch."""
    text = (
        f"Your rotation of push mirror {rotation.old_mirror_id} of "
        f"*{escape(rotation.project_path)}* was left unfinished for a day and is cleaned up: "
        f"{prose(rotation.result or '')}. The old mirror is kept; run "
        f"`/mirror rotate {escape(rotation.project_path)} {rotation.old_mirror_id}` to try again."
    )
    return SlackMessage(text, [section(text)])
