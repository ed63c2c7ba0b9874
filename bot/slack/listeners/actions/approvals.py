"""Approve / Reject / Cancel: `press` makes the transition once; this updates the card."""

from __future__ import annotations

from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.commands.actions import ApprovalRef
from bot.commands.buttons import press
from bot.commands.results import Problem
from bot.domain.approvals import Approval
from bot.services import Services
from bot.slack.blocks.replies import approval_card, render
from bot.slack.delivery import Respond
from bot.slack.listeners.actions.clicks import actor_of


async def answer_approval_button(
    body: dict[str, Any],
    action: dict[str, Any],
    client: AsyncWebClient,
    respond: Respond,
    services: Services,
) -> None:
    clicker = actor_of(body)
    reply = await press(action["action_id"], action["value"], clicker, services)
    if isinstance(reply, Problem):
        await respond(
            **render(reply).as_kwargs(), replace_original=False, response_type="ephemeral"
        )
    request_id = ApprovalRef.model_validate_json(action["value"]).request_id
    approval = await services.approvals.get(request_id)
    if approval is not None:
        await update_card(approval, client, respond)


async def update_card(approval: Approval, client: AsyncWebClient, respond: Respond) -> None:
    message = approval_card(approval)
    if approval.message_ts:
        try:
            await client.chat_update(
                channel=approval.channel_id, ts=approval.message_ts, **message.as_kwargs()
            )
            return
        except SlackApiError:
            pass
    await respond(**message.as_kwargs(), replace_original=True)
