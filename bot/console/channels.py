"""The console's channels: there is no Slack workspace, so every channel exists and the
person at the terminal and the bot are in all of them (`#ops` is channel `COPS`)."""

from __future__ import annotations

import re

from bot.domain.channels import Channel


def console_channel_id(name: str) -> str:
    return "C" + re.sub(r"[^A-Z0-9]", "_", name.upper())[:31]


class ConsoleChannelDirectory:
    async def find(self, name: str) -> Channel | None:
        return Channel(console_channel_id(name), name)

    async def get(self, channel_id: str) -> Channel | None:
        return Channel(channel_id, channel_id.removeprefix("C").lower())

    async def is_member(self, channel_id: str, user_id: str) -> bool:
        return True
