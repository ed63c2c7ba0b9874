"""The rotate modal: new credentials (or, for SSH, a confirmation) → start the rotation."""

from __future__ import annotations

from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.commands.results import Reply
from bot.commands.rotation import request_rotation
from bot.commands.run import Actor
from bot.gitlab.client import GitLabClient
from bot.services import Services
from bot.slack.forms import project_of, read_rotate_form, submit_form
from bot.slack.ids import FormContext


async def handle_rotate_submission(
    ack: Any,
    body: dict[str, Any],
    view: dict[str, Any],
    client: AsyncWebClient,
    context: dict[str, Any],
) -> None:
    credentials, errors = read_rotate_form(view)

    async def rotate(
        gitlab: GitLabClient, actor: Actor, meta: FormContext, services: Services
    ) -> Reply:
        assert meta.mirror_id is not None
        return await request_rotation(
            gitlab, project_of(meta), meta.mirror_id, credentials, actor, services
        )

    await submit_form(ack, body, view, client, context, errors, rotate)
