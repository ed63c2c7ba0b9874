"""Mute 24 h on an alert: `press` records the mute; the channel is told who muted what."""

from __future__ import annotations

from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.commands.buttons import press
from bot.services import Services
from bot.slack.delivery import Respond, deliver
from bot.slack.listeners.actions.clicks import actor_of


async def answer_mute_button(
    body: dict[str, Any],
    action: dict[str, Any],
    client: AsyncWebClient,
    respond: Respond,
    services: Services,
) -> None:
    actor = actor_of(body)
    reply = await press(action["action_id"], action["value"], actor, services)
    await deliver(
        reply,
        client=client,
        respond=respond,
        channel_id=actor.channel_id,
        user_id=actor.user_id,
        services=services,
    )
