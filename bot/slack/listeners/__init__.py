"""Bolt listeners, one per file, grouped by kind; each package's `register(app)` wires them."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.slack.listeners import actions, commands, events, views


def register(app: AsyncApp) -> None:
    commands.register(app)
    actions.register(app)
    views.register(app)
    events.register(app)
