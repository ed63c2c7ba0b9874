"""Delivering the outbox to Slack: post alerts, edit them, reply in their threads.

Rate limits are honoured by rescheduling (Slack's Retry-After), not by sleeping in the
sender; Slack down, timeouts and unknown errors back off and are retried; a restart loses
nothing, because a row is only marked sent after Slack accepted it.

Errors that no retry can cure are not retried: a channel that is archived, deleted or
that removed the bot breaks its subscriptions and tells the people who made them once; a
token Slack rejects is an operator's problem (logged once, on /healthz and /metrics).
"""

from __future__ import annotations

import logging
from datetime import timedelta

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import metrics
from bot.domain import outbox
from bot.domain.delivery_health import DeliveryHealth
from bot.domain.outbox import MessageKind, OutboxRetry, PendingMessage
from bot.domain.subscriptions import mark_channel_broken
from bot.slack.blocks.alerts import render_outbox
from bot.store.db import transaction

log = logging.getLogger(__name__)

# Slack's answers that mean this channel will not take the bot's posts until a person acts.
CHANNEL_GONE = frozenset(
    {
        "channel_not_found",
        "is_archived",
        "not_in_channel",
        "restricted_action",
        "restricted_action_read_only_channel",
        "team_access_not_granted",
    }
)
# Slack's answers that mean no post will go anywhere until the token or the app is fixed.
TOKEN_REJECTED = frozenset(
    {
        "invalid_auth",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "not_authed",
        "no_permission",
        "missing_scope",
        "not_allowed_token_type",
        "team_disabled",
    }
)
# Answers about this message itself: sending it again gets the same answer.
MESSAGE_REFUSED = frozenset(
    {
        "invalid_blocks",
        "invalid_blocks_format",
        "msg_too_long",
        "no_text",
        "invalid_arguments",
        "message_not_found",  # the alert to edit was deleted
        "cant_update_message",
        "edit_window_closed",
    }
)


async def send_due(
    sessions: async_sessionmaker[AsyncSession],
    client: AsyncWebClient,
    claimer: str,
    *,
    health: DeliveryHealth | None = None,
    retry: OutboxRetry = outbox.DEFAULT_RETRY,
    batch: int = 20,
) -> int:
    """Send up to `batch` due messages, each claimed just before it is sent (a batch
    claimed at once would outlast its claim behind a slow Slack, and another replica
    would send it again); returns how many were claimed."""
    health = health or DeliveryHealth()
    sent = 0
    while sent < batch and (claimed := await outbox.claim_due(sessions, claimer)):
        for message in claimed:
            await _send(sessions, client, message, health, retry)
            sent += 1
    return sent


async def _send(
    sessions: async_sessionmaker[AsyncSession],
    client: AsyncWebClient,
    message: PendingMessage,
    health: DeliveryHealth,
    retry: OutboxRetry,
) -> None:
    parent: str | None = None
    if message.thread_of is not None:
        status, parent = await outbox.parent_ts(sessions, message.thread_of)
        if status == "pending":  # the alert itself is not out yet: keep the order
            await outbox.retry_later(
                sessions,
                message,
                error="waiting for the alert",
                after=timedelta(seconds=1),
                count=False,
            )
            return
        if status == "failed":  # the alert never reached Slack: nothing to reply to or edit
            await _give_up(sessions, message, f"the alert is {status}")
            return
        if parent is None:
            await outbox.retry_later(sessions, message, error=f"the alert is {status}", retry=retry)
            return
    rendered = render_outbox(message.kind, message.payload).as_kwargs()
    try:
        if message.kind is MessageKind.ALERT:
            response = await client.chat_postMessage(channel=message.channel_id, **rendered)
            ts: str | None = str(response["ts"])
        elif message.kind is MessageKind.NOTICE:
            response = await client.chat_postMessage(channel=message.channel_id, **rendered)
            ts = str(response["ts"])
        elif message.kind is MessageKind.ALERT_UPDATE:
            assert parent is not None  # updates always name their alert
            await client.chat_update(channel=message.channel_id, ts=parent, **rendered)
            ts = parent
        else:
            response = await client.chat_postMessage(
                channel=message.channel_id, thread_ts=parent, **rendered
            )
            ts = str(response["ts"])
    except SlackApiError as exc:
        error = str(exc.response.get("error") or exc.response.status_code)
        if exc.response.status_code == 429:
            wait = float(exc.response.headers.get("Retry-After", "1") or 1)
            await outbox.retry_later(
                sessions, message, error="rate limited", after=timedelta(seconds=wait), count=False
            )
        elif error in CHANNEL_GONE:
            await _channel_gone(sessions, message, error)
        elif error in TOKEN_REJECTED:
            if health.failed(error):
                log.error(
                    "Slack rejects the bot token (%s): no message can be delivered until "
                    "SLACK_BOT_TOKEN is fixed or the app is reinstalled",
                    error,
                )
            metrics.SLACK_TOKEN_REJECTED.set(1)
            await _give_up(sessions, message, error)
        elif error in MESSAGE_REFUSED:
            log.error("Slack refused outbox message %s for good: %s", message.dedupe_key, error)
            await _give_up(sessions, message, error)
        else:
            log.warning("Slack refused outbox message %s: %s", message.dedupe_key, error)
            await outbox.retry_later(sessions, message, error=error, retry=retry)
        return
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        log.warning(
            "Slack unreachable for outbox message %s: %s", message.dedupe_key, type(exc).__name__
        )
        await outbox.retry_later(sessions, message, error=type(exc).__name__, retry=retry)
        return
    if not await outbox.mark_sent(sessions, message, ts):
        log.warning("outbox message %s was sent after its claim ran out", message.dedupe_key)
    if health.delivered():
        log.warning("Slack accepts the bot token again: messages are delivered")
        metrics.SLACK_TOKEN_REJECTED.set(0)
    if message.kind is MessageKind.ALERT:
        metrics.ALERTS_POSTED.inc()
    elif message.kind is MessageKind.ALERT_RECOVERY:
        metrics.ALERTS_RESOLVED.inc()


async def _give_up(
    sessions: async_sessionmaker[AsyncSession], message: PendingMessage, error: str
) -> None:
    metrics.OUTBOX_GIVEN_UP.labels(error if error in _KNOWN else "other").inc()
    async with transaction(sessions) as session:
        await outbox.give_up(session, message, error=error)


async def _channel_gone(
    sessions: async_sessionmaker[AsyncSession], message: PendingMessage, error: str
) -> None:
    """Stop this message and the channel's subscriptions, in one transaction."""
    metrics.OUTBOX_GIVEN_UP.labels(error).inc()
    async with transaction(sessions) as session:
        await outbox.give_up(session, message, error=error)
        broken = await mark_channel_broken(session, message.channel_id, error)
    if broken:
        log.warning(
            "channel %s refuses the bot's posts (%s): %d subscriptions marked broken, "
            "their owners told",
            message.channel_id,
            error,
            len(broken),
        )


_KNOWN = CHANNEL_GONE | TOKEN_REJECTED | MESSAGE_REFUSED
