"""Mute 24 h on an alert: silence one mirror in this channel (no alert, reminder or
recovery) until the mute ends or `/mirror unmute` ends it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.subscriptions import PULL_KEY, push_key
from bot.gitlab.refs import ProjectRef
from bot.services import Services
from bot.slack.blocks.text import slack_date
from bot.slack.delivery import Respond
from bot.slack.ids import MirrorRef
from bot.slack.listeners.actions.mirror_buttons import actor_of
from bot.slack.listeners.guard import report_failure
from bot.store.models import utcnow

MUTE_FOR = timedelta(hours=24)


async def handle_mute_button(
    ack: Any,
    body: dict[str, Any],
    action: dict[str, Any],
    client: AsyncWebClient,
    respond: Respond,
    context: dict[str, Any],
) -> None:
    await ack()
    services: Services = context["services"]
    actor = actor_of(body)
    target = MirrorRef.model_validate_json(action["value"])
    try:
        gitlab = await services.accounts.gitlab_for(actor.slack_user)
        project = await gitlab.get_project(ProjectRef(str(target.project_id)))
        key = PULL_KEY if target.mirror_id is None else push_key(target.mirror_id)
        until = utcnow() + MUTE_FOR
        await services.subscriptions.mute(actor.channel_id, project.id, key, until, actor.user_id)
        name = "the pull mirror" if target.mirror_id is None else f"mirror {target.mirror_id}"
        unmute = "pull" if target.mirror_id is None else str(target.mirror_id)
        await client.chat_postMessage(
            channel=actor.channel_id,
            text=(
                f":mute: <@{actor.user_id}> muted alerts for {name} of "
                f"*{project.path_with_namespace}* here until {slack_date(until)} — "
                f"`/mirror unmute {project.path_with_namespace} {unmute}` ends it"
            ),
        )
    except Exception as exc:
        await report_failure(
            exc,
            lambda **message: respond(**message, replace_original=False, response_type="ephemeral"),
        )
