"""The pull-mirror modal: it carries credentials, so it is a modal and never a command."""

from __future__ import annotations

from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.commands.run import Actor, request_change, run_guarded
from bot.domain.mirrors import Operation
from bot.services import Services
from bot.slack.delivery import deliver
from bot.slack.forms import form_context, project_of, read_pull_config_form


async def handle_pull_config_submission(
    ack: Any,
    body: dict[str, Any],
    view: dict[str, Any],
    client: AsyncWebClient,
    context: dict[str, Any],
) -> None:
    services: Services = context["services"]
    attributes, errors = read_pull_config_form(view)
    if errors:
        await ack(response_action="errors", errors=errors)
        return
    await ack()
    meta = form_context(view)
    actor = Actor(body["user"]["team_id"], body["user"]["id"], meta.channel_id)

    async def change() -> Any:
        gitlab = await services.accounts.gitlab_for(actor.slack_user)
        return await request_change(
            gitlab, Operation.PULL_CONFIG, project_of(meta), None, attributes, actor, services
        )

    reply = await run_guarded(change)
    await deliver(
        reply,
        client=client,
        respond=None,
        channel_id=actor.channel_id,
        user_id=actor.user_id,
        services=services,
    )
