from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.slack.ids import Views
from bot.slack.listeners.views.login import handle_login_submission
from bot.slack.listeners.views.pull_config import handle_pull_config_submission
from bot.slack.listeners.views.push_mirror_form import handle_push_mirror_submission
from bot.slack.listeners.views.rotate import handle_rotate_submission


def register(app: AsyncApp) -> None:
    app.view(Views.LOGIN.value)(handle_login_submission)
    app.view(Views.ADD_PUSH_MIRROR.value)(handle_push_mirror_submission)
    app.view(Views.EDIT_PUSH_MIRROR.value)(handle_push_mirror_submission)
    app.view(Views.PULL_CONFIG.value)(handle_pull_config_submission)
    app.view(Views.ROTATE.value)(handle_rotate_submission)
