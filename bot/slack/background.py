"""Slack work that is not a response to a request: expiring approval cards."""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.services import Services
from bot.slack.blocks.replies import approval_card

log = logging.getLogger(__name__)


async def expire_approvals_once(services: Services, client: AsyncWebClient) -> int:
    expired = await services.approvals.expire_due()
    for approval in expired:
        if approval.message_ts is None:
            continue
        try:
            await client.chat_update(
                channel=approval.channel_id,
                ts=approval.message_ts,
                **approval_card(approval).as_kwargs(),
            )
        except SlackApiError as exc:
            log.warning(
                "could not mark approval %s expired: %s", approval.id, exc.response.get("error")
            )
    return len(expired)
