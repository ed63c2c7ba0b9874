"""Mute 24 h on an alert: `press` records the mute; the channel is told who muted what."""

from __future__ import annotations

from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.commands.buttons import press
from bot.services import Services
from bot.slack.after_ack import later
from bot.slack.delivery import Respond, deliver
from bot.slack.listeners.actions.mirror_buttons import actor_of, direct_message
from bot.slack.listeners.guard import report_failure


async def handle_mute_button(
    ack: Any,
    body: dict[str, Any],
    action: dict[str, Any],
    client: AsyncWebClient,
    respond: Respond | None,
    context: dict[str, Any],
) -> None:
    await ack()
    later(context, answer_mute_button(body, action, client, respond, context["services"]))


async def answer_mute_button(
    body: dict[str, Any],
    action: dict[str, Any],
    client: AsyncWebClient,
    respond: Respond | None,
    services: Services,
) -> None:
    actor = actor_of(body)
    tell = respond or direct_message(client, actor.user_id)
    try:
        reply = await press(action["action_id"], action["value"], actor, services)
        await deliver(
            reply,
            client=client,
            respond=respond,
            channel_id=actor.channel_id,
            user_id=actor.user_id,
            services=services,
        )
    except Exception as exc:
        await report_failure(exc, tell)
