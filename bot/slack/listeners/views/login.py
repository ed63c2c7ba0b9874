"""The login modal: validate the pasted token with GitLab, store it encrypted."""

from __future__ import annotations

from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.accounts import SlackUser
from bot.services import Services
from bot.slack.after_ack import later
from bot.slack.blocks import modals
from bot.slack.blocks.text import prose
from bot.slack.forms import form_context, text_value
from bot.slack.ids import Fields
from bot.slack.listeners.guard import problem_of

TITLE = "Link GitLab"


async def handle_login_submission(
    ack: Any,
    body: dict[str, Any],
    view: dict[str, Any],
    client: AsyncWebClient,
    context: dict[str, Any],
) -> None:
    services: Services = context["services"]
    token = text_value(view, Fields.TOKEN)
    if not token:
        await ack(response_action="errors", errors={Fields.TOKEN.value: "paste your token"})
        return
    # GitLab may be slow: answer Slack now with a waiting view, then show the outcome.
    meta = form_context(view)
    await ack(
        response_action="update",
        view=modals.loading(TITLE, meta, "Checking your token with GitLab…"),
    )
    who = SlackUser(body["user"]["team_id"], body["user"]["id"])
    later(context, link_and_tell(who, token, meta.channel_id, view["id"], client, services))


async def link_and_tell(
    who: SlackUser,
    token: str,
    channel_id: str,
    view_id: str,
    client: AsyncWebClient,
    services: Services,
) -> None:
    try:
        link = await services.accounts.link(
            who, token, linked_by=who.user_id, channel_id=channel_id
        )
    except Exception as exc:
        text = f":warning: {prose(problem_of(exc).message)}"
    else:
        scopes = ", ".join(link.scopes) or "unknown scopes"
        expiry = f"; it expires {link.expires_at}" if link.expires_at else ""
        text = (
            f":white_check_mark: Linked to GitLab user *{link.gitlab_username}* ({scopes}{expiry})."
        )
    await client.views_update(view_id=view_id, view=modals.notice(TITLE, text))
