"""The device login message's buttons."""

from __future__ import annotations

from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.commands.results import Problem
from bot.services import Services
from bot.slack import forms
from bot.slack.blocks.replies import render
from bot.slack.delivery import Respond
from bot.slack.device_login import start_device_login
from bot.slack.listeners.actions.clicks import actor_of


async def acknowledge_link_click(ack: Any) -> None:
    """A link button still sends its click: Slack shows a warning unless it is acked."""
    await ack()


async def answer_use_token(
    body: dict[str, Any],
    action: dict[str, Any],
    client: AsyncWebClient,
    respond: Respond,
    services: Services,
) -> None:
    await forms.open_login(body["trigger_id"], actor_of(body), client, services)


async def answer_start_again(
    body: dict[str, Any],
    action: dict[str, Any],
    client: AsyncWebClient,
    respond: Respond,
    services: Services,
) -> None:
    if services.device_logins is None:  # the OAuth application was removed meanwhile
        problem = Problem("GitLab login is not configured here; use a personal access token")
        await respond(**render(problem).as_kwargs(), response_type="ephemeral")
        return
    await start_device_login(
        services.device_logins, actor_of(body), body.get("response_url"), respond, replacing=True
    )
