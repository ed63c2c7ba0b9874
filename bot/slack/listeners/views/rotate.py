"""The rotate modal: new credentials (or, for SSH, a confirmation) → start the rotation."""

from __future__ import annotations

from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.commands.results import Reply
from bot.commands.rotation import request_rotation
from bot.commands.run import Actor, run_guarded
from bot.services import Services
from bot.slack.after_ack import later
from bot.slack.delivery import deliver
from bot.slack.forms import form_context, project_of, read_rotate_form


async def handle_rotate_submission(
    ack: Any,
    body: dict[str, Any],
    view: dict[str, Any],
    client: AsyncWebClient,
    context: dict[str, Any],
) -> None:
    credentials, errors = read_rotate_form(view)
    if errors:
        await ack(response_action="errors", errors=errors)
        return
    await ack()
    meta = form_context(view)
    assert meta.mirror_id is not None
    mirror_id = meta.mirror_id
    actor = Actor(body["user"]["team_id"], body["user"]["id"], meta.channel_id)
    services: Services = context["services"]

    async def rotate() -> Reply:
        gitlab = await services.accounts.gitlab_for(actor.slack_user)
        return await request_rotation(
            gitlab, project_of(meta), mirror_id, credentials, actor, services
        )

    async def rotate_and_tell() -> None:
        await deliver(
            await run_guarded(rotate),
            client=client,
            respond=None,
            channel_id=actor.channel_id,
            user_id=actor.user_id,
            services=services,
        )

    later(context, rotate_and_tell())
