from __future__ import annotations

import re
from enum import StrEnum

from slack_bolt.async_app import AsyncApp

from bot.commands.actions import (
    AlertActions,
    ApprovalActions,
    LoginActions,
    MirrorActions,
    RotationActions,
)
from bot.slack.listeners.actions.alerts import answer_mute_button
from bot.slack.listeners.actions.approvals import answer_approval_button
from bot.slack.listeners.actions.clicks import click_listener
from bot.slack.listeners.actions.login import (
    acknowledge_link_click,
    answer_start_again,
    answer_use_token,
)
from bot.slack.listeners.actions.mirror_buttons import answer_mirror_button
from bot.slack.listeners.actions.rotation_buttons import (
    answer_key_installed,
    answer_rotate_button,
)


def register(app: AsyncApp) -> None:
    # One listener per kind of button: Bolt tries listeners in turn on every request.
    app.action(one_of(MirrorActions, suffix="(-prev)?"))(click_listener(answer_mirror_button))
    app.action(one_of(ApprovalActions))(click_listener(answer_approval_button))
    app.action(AlertActions.MUTE.value)(click_listener(answer_mute_button))
    app.action(LoginActions.OPEN_GITLAB.value)(acknowledge_link_click)
    app.action(LoginActions.USE_TOKEN.value)(click_listener(answer_use_token))
    app.action(LoginActions.START_AGAIN.value)(click_listener(answer_start_again))
    app.action(re.compile(f"^({RotationActions.ROTATE}|{RotationActions.RECREATE})$"))(
        click_listener(answer_rotate_button)
    )
    app.action(RotationActions.KEY_INSTALLED.value)(click_listener(answer_key_installed))


def one_of(actions: type[StrEnum], *, suffix: str = "") -> re.Pattern[str]:
    choices = "|".join(re.escape(action.value) for action in actions)
    return re.compile(f"^({choices}){suffix}$")
