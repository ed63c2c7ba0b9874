"""Slack work that is not a response to a request: approval cards that expired, and runs
of approved changes that were interrupted (their card updated, their requester told)."""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.approvals import Approval
from bot.domain.recovery import resolve_interrupted
from bot.services import Services
from bot.slack.blocks.replies import approval_card, interrupted_notice

log = logging.getLogger(__name__)


async def sweep_approvals_once(services: Services, client: AsyncWebClient) -> int:
    """Expire stale requests and resolve interrupted runs; at start and then periodically."""
    expired = await services.approvals.expire_due()
    for approval in expired:
        await _update_card(approval, client)
    resolved = await resolve_interrupted(
        services.approvals, services.accounts, services.service_gitlab()
    )
    for approval in resolved:
        log.warning("approval %s was interrupted while it ran: %s", approval.id, approval.status)
        await _update_card(approval, client)
        try:
            await client.chat_postMessage(
                channel=approval.requester_id, **interrupted_notice(approval).as_kwargs()
            )
        except SlackApiError as exc:
            log.warning("could not tell the requester of %s: %s", approval.id, exc.response)
    return len(expired) + len(resolved)


async def _update_card(approval: Approval, client: AsyncWebClient) -> None:
    if approval.message_ts is None:
        return
    try:
        await client.chat_update(
            channel=approval.channel_id,
            ts=approval.message_ts,
            **approval_card(approval).as_kwargs(),
        )
    except SlackApiError as exc:
        log.warning(
            "could not update the card of approval %s: %s",
            approval.id,
            exc.response.get("error"),
        )
