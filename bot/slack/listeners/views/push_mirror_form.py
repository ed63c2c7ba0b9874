"""Add and edit push-mirror modals: validate, then create/update (or ask for approval)."""

from __future__ import annotations

from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.mirrors import Operation
from bot.slack.forms import read_push_mirror_form, submit_change
from bot.slack.ids import Views


async def handle_push_mirror_submission(
    ack: Any,
    body: dict[str, Any],
    view: dict[str, Any],
    client: AsyncWebClient,
    context: dict[str, Any],
) -> None:
    adding = view["callback_id"] == Views.ADD_PUSH_MIRROR.value
    attributes, errors = read_push_mirror_form(view, adding=adding)
    await submit_change(
        ack,
        body,
        view,
        client,
        context,
        Operation.ADD if adding else Operation.EDIT,
        attributes,
        errors,
    )
