"""The channel directory on Slack's conversations API (the domain's `ChannelDirectory`)."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.channels import Channel, ChannelUnavailable

log = logging.getLogger(__name__)
PAGE = 200
MAX_PAGES = 50  # 10,000 channels or members: past that, the answer is "not found"
# What Slack answers for a channel the bot cannot see (private, deleted, other workspace).
_UNSEEN = {"channel_not_found", "not_in_channel"}


class SlackChannelDirectory:
    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    async def find(self, name: str) -> Channel | None:
        wanted = name.lower()
        async for page in self._pages(
            "conversations.list",
            "channels",
            types="public_channel,private_channel",
            exclude_archived=True,
        ):
            for found in page:
                if str(found.get("name", "")).lower() == wanted:
                    return _channel(found)
        return None

    async def get(self, channel_id: str) -> Channel | None:
        if channel_id.startswith("D"):  # a DM: reading one would need im:read, for nothing
            return Channel(channel_id, None, is_direct=True)
        try:
            response = await self.client.conversations_info(channel=channel_id)
        except SlackApiError as exc:
            if exc.response.get("error") in _UNSEEN:
                return None
            raise _unavailable(exc) from None
        return _channel(response["channel"])

    async def is_member(self, channel_id: str, user_id: str) -> bool:
        async for page in self._pages("conversations.members", "members", channel=channel_id):
            if user_id in page:
                return True
        return False

    async def _pages(self, method: str, key: str, **arguments: Any) -> Any:
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            try:
                if method == "conversations.list":
                    response = await self.client.conversations_list(
                        limit=PAGE, cursor=cursor, **arguments
                    )
                else:
                    response = await self.client.conversations_members(
                        limit=PAGE, cursor=cursor, **arguments
                    )
            except SlackApiError as exc:
                raise _unavailable(exc) from None
            yield response.get(key) or []
            cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                return


def _channel(found: dict[str, Any]) -> Channel:
    return Channel(
        id=str(found["id"]),
        name=found.get("name"),
        is_private=bool(found.get("is_private")),
        is_archived=bool(found.get("is_archived")),
        is_direct=bool(found.get("is_im") or found.get("is_mpim")),
        bot_is_member=bool(found.get("is_member")),
        is_shared_outside=bool(found.get("is_ext_shared") or found.get("is_pending_ext_shared")),
    )


def _unavailable(exc: SlackApiError) -> ChannelUnavailable:
    error = exc.response.get("error") or exc.response.status_code
    log.warning("Slack could not tell about a channel: %s", error)
    return ChannelUnavailable(f"Slack could not tell me about that channel ({error}) — try again")
