"""*Rotate credentials* / *Re-create (new host keys)* (on a mirror's row, its details and
alerts) open the rotate form; *Key installed — switch* switches an SSH rotation."""

from __future__ import annotations

from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.commands.actions import MirrorRef
from bot.commands.buttons import press
from bot.commands.results import RotationProgress
from bot.services import Services
from bot.slack import forms, rotations
from bot.slack.blocks.replies import render
from bot.slack.delivery import Respond
from bot.slack.listeners.actions.clicks import actor_of


async def answer_rotate_button(
    body: dict[str, Any],
    action: dict[str, Any],
    client: AsyncWebClient,
    respond: Respond,
    services: Services,
) -> None:
    target = MirrorRef.model_validate_json(action["value"])
    assert target.mirror_id is not None
    await forms.open_rotate_form(
        body["trigger_id"],
        actor_of(body),
        target.project,
        target.mirror_id,
        client,
        services,
    )


async def answer_key_installed(
    body: dict[str, Any],
    action: dict[str, Any],
    client: AsyncWebClient,
    respond: Respond,
    services: Services,
) -> None:
    reply = await press(action["action_id"], action["value"], actor_of(body), services)
    if not isinstance(reply, RotationProgress):
        await respond(
            **render(reply).as_kwargs(), replace_original=False, response_type="ephemeral"
        )
        return
    await rotations.show(reply.rotation, services, client)
    rotations.start_driving(reply.rotation.id, services, client)
