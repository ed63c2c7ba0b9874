from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.slack.ids import EVENTS
from bot.slack.listeners.events.app_home import handle_app_home_opened

APP_HOME_OPENED = EVENTS[0]


def register(app: AsyncApp) -> None:
    app.event(APP_HOME_OPENED)(handle_app_home_opened)
