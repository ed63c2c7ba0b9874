"""`app_home_opened`: publish the user's home tab, fresh from the monitor's observations."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain import groups
from bot.domain.accounts import SlackUser
from bot.domain.fleet import channel_health
from bot.services import Services
from bot.slack.after_ack import later
from bot.slack.blocks.home import home_view
from bot.store.models import utcnow

log = logging.getLogger(__name__)


async def handle_app_home_opened(
    event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient, context: dict[str, Any]
) -> None:
    if event.get("tab") != "home":
        return
    services: Services = context["services"]
    team_id = body.get("team_id") or context.get("team_id") or ""
    later(context, publish_home(SlackUser(team_id, event["user"]), client, services))


async def publish_home(user: SlackUser, client: AsyncWebClient, services: Services) -> None:
    link = await services.accounts.get(user)
    channels = await channels_of(user.user_id, client)
    subscriptions = await services.subscriptions.of_channels(channels)
    project_ids = sorted({s.project_id for s in subscriptions})
    observations = await services.subscriptions.observations(project_ids)
    broken = await services.subscriptions.broken_for(user.user_id, channels)
    health = channel_health(
        subscriptions,
        observations,
        await groups.group_watches_of(services.sessions, channels),
        stale_after=timedelta(days=services.settings.mirrorbot_stale_after),
        now=utcnow(),
    )
    await client.views_publish(
        user_id=user.user_id,
        view=home_view(link, observations, len(project_ids), broken, health),
    )


async def channels_of(user_id: str, client: AsyncWebClient) -> list[str]:
    """The channels the user is in (their alerts are visible to them there anyway)."""
    channels: list[str] = []
    cursor = None
    try:
        for _ in range(20):  # at most 20 pages of 200
            response = await client.users_conversations(
                user=user_id,
                types="public_channel,private_channel",
                limit=200,
                cursor=cursor,
                exclude_archived=True,
            )
            found: list[dict[str, Any]] = response.get("channels") or []
            channels += [str(channel["id"]) for channel in found]
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
    except SlackApiError as exc:
        log.warning("cannot list the user's channels: %s", exc.response.get("error"))
    return channels
