from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.slack.ids import SLASH_COMMAND
from bot.slack.listeners.commands.mirror import handle_mirror_command


def register(app: AsyncApp) -> None:
    app.command(SLASH_COMMAND)(handle_mirror_command)
