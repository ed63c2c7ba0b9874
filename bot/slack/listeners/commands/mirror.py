"""`/mirror …`: ack at once; then open a form or run the command and reply."""

from __future__ import annotations

from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.commands.parse import Command, UsageError, parse_command
from bot.commands.results import Problem, SyncStarted
from bot.commands.run import MODAL_COMMANDS, Actor, run_command
from bot.services import Services
from bot.slack import forms
from bot.slack.after_ack import later
from bot.slack.blocks.replies import render
from bot.slack.delivery import Respond, deliver
from bot.slack.device_login import start_device_login
from bot.slack.listeners.guard import report_failure


async def handle_mirror_command(
    ack: Any,
    command: dict[str, Any],
    client: AsyncWebClient,
    respond: Respond,
    context: dict[str, Any],
) -> None:
    await ack()
    later(context, answer_mirror_command(command, client, respond, context["services"]))


async def answer_mirror_command(
    command: dict[str, Any], client: AsyncWebClient, respond: Respond, services: Services
) -> None:
    actor = Actor(command["team_id"], command["user_id"], command["channel_id"])
    try:
        parsed = parse_command(command.get("text") or "", services.settings.gitlab_url)
    except UsageError as exc:
        await respond(
            **render(Problem(exc.message, exc.usage)).as_kwargs(), response_type="ephemeral"
        )
        return
    try:
        if parsed.name == "login" and services.device_logins is not None:
            await start_device_login(
                services.device_logins, actor, command.get("response_url"), respond
            )
            return
        if parsed.name in MODAL_COMMANDS:
            await open_form(parsed, actor, command["trigger_id"], client, services)
            return
        if parsed.name == "inventory" and parsed.group is not None:
            # A big group takes many reads within the budget: say it is under way.
            await respond(
                text=f"Taking the inventory of {parsed.group}/ — every project you maintain "
                "there is read; the summary follows, then the CSV file in our DM.",
                response_type="ephemeral",
            )
        reply = await run_command(parsed, actor, services)
        gitlab = None
        if isinstance(reply, SyncStarted):  # its progress is followed as the caller
            gitlab = await services.accounts.gitlab_for(actor.slack_user)
        await deliver(
            reply,
            client=client,
            respond=respond,
            channel_id=actor.channel_id,
            user_id=actor.user_id,
            services=services,
            gitlab=gitlab,
        )
    except Exception as exc:
        await report_failure(exc, lambda **message: respond(**message, response_type="ephemeral"))


async def open_form(
    parsed: Command, actor: Actor, trigger_id: str, client: AsyncWebClient, services: Services
) -> None:
    if parsed.name == "login":
        await forms.open_login(trigger_id, actor, client, services)
    elif parsed.name == "add":
        await forms.open_push_mirror_form(trigger_id, actor, parsed, client, services)
    elif parsed.name == "edit":
        await forms.open_push_mirror_form(trigger_id, actor, parsed, client, services)
    elif parsed.name == "rotate":
        assert parsed.project is not None and parsed.mirror_id is not None
        await forms.open_rotate_form(
            trigger_id, actor, parsed.project, parsed.mirror_id, client, services
        )
    else:
        await forms.open_pull_config_form(trigger_id, actor, parsed, client, services)
