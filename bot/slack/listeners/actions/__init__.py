from __future__ import annotations

import re

from slack_bolt.async_app import AsyncApp

from bot.slack.ids import AlertActions, ApprovalActions, MirrorActions
from bot.slack.listeners.actions.alerts import handle_mute_button
from bot.slack.listeners.actions.approvals import handle_approval_button
from bot.slack.listeners.actions.mirror_buttons import handle_mirror_button


def register(app: AsyncApp) -> None:
    for action in MirrorActions:
        app.action(re.compile(f"^{re.escape(action.value)}(-prev)?$"))(handle_mirror_button)
    for decision in ApprovalActions:
        app.action(decision.value)(handle_approval_button)
    app.action(AlertActions.MUTE.value)(handle_mute_button)
