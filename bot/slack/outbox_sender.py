"""Delivering the outbox to Slack: post alerts, edit them, reply in their threads.

Rate limits are honoured by rescheduling (Slack's Retry-After), not by sleeping in the
sender; any other failure backs off and is retried; a restart loses nothing, because a
row is only marked sent after Slack accepted it.
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
from bot.domain.outbox import MessageKind, PendingMessage
from bot.slack.blocks.alerts import render_outbox

log = logging.getLogger(__name__)


async def send_due(
    sessions: async_sessionmaker[AsyncSession],
    client: AsyncWebClient,
    claimer: str,
    *,
    batch: int = 20,
) -> int:
    """Send up to `batch` due messages, each claimed just before it is sent (a batch
    claimed at once would outlast its claim behind a slow Slack, and another replica
    would send it again); returns how many were claimed."""
    sent = 0
    while sent < batch and (claimed := await outbox.claim_due(sessions, claimer)):
        for message in claimed:
            await _send(sessions, client, message)
            sent += 1
    return sent


async def _send(
    sessions: async_sessionmaker[AsyncSession], client: AsyncWebClient, message: PendingMessage
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
        if parent is None:
            await outbox.retry_later(sessions, message, error=f"the alert is {status}")
            return
    rendered = render_outbox(message.kind, message.payload).as_kwargs()
    try:
        if message.kind is MessageKind.ALERT:
            response = await client.chat_postMessage(channel=message.channel_id, **rendered)
            ts: str | None = str(response["ts"])
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
        else:
            log.warning("Slack refused outbox message %s: %s", message.dedupe_key, error)
            await outbox.retry_later(sessions, message, error=error)
        return
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        log.warning(
            "Slack unreachable for outbox message %s: %s", message.dedupe_key, type(exc).__name__
        )
        await outbox.retry_later(sessions, message, error=type(exc).__name__)
        return
    if not await outbox.mark_sent(sessions, message, ts):
        log.warning("outbox message %s was sent after its claim ran out", message.dedupe_key)
    if message.kind is MessageKind.ALERT:
        metrics.ALERTS_POSTED.inc()
    elif message.kind is MessageKind.ALERT_RECOVERY:
        metrics.ALERTS_RESOLVED.inc()
