"""The pull-mirror modal: it carries credentials, so it is a modal and never a command."""

from __future__ import annotations

from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.mirrors import Operation
from bot.slack.forms import read_pull_config_form, submit_change


async def handle_pull_config_submission(
    ack: Any,
    body: dict[str, Any],
    view: dict[str, Any],
    client: AsyncWebClient,
    context: dict[str, Any],
) -> None:
    attributes, errors = read_pull_config_form(view)
    await submit_change(ack, body, view, client, context, Operation.PULL_CONFIG, attributes, errors)
