"""Buttons on a mirror: `press` acts as the person who clicked; this delivers the result
and re-renders the clicked message (or the App Home) with the mirror's new state."""

from __future__ import annotations

from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.commands.actions import MirrorRef
from bot.commands.buttons import press
from bot.commands.results import ApprovalNeeded, ChangeMade, MirrorList, SyncStarted
from bot.domain.mirrors import list_project_mirrors
from bot.gitlab.client import GitLabClient
from bot.gitlab.errors import MirrorNotFound
from bot.gitlab.refs import ProjectRef
from bot.services import Services
from bot.slack.blocks import mirrors as mirror_blocks
from bot.slack.blocks.replies import render
from bot.slack.blocks.text import context as context_block
from bot.slack.delivery import Respond, deliver
from bot.slack.listeners.actions.clicks import actor_of
from bot.slack.listeners.events.app_home import publish_home

_CHANGES = (ChangeMade, SyncStarted, ApprovalNeeded)


def from_home(body: dict[str, Any]) -> bool:
    return bool(body.get("container", {}).get("type") == "view")


async def answer_mirror_button(
    body: dict[str, Any],
    action: dict[str, Any],
    client: AsyncWebClient,
    respond: Respond,
    services: Services,
) -> None:
    actor = actor_of(body)
    reply = await press(action["action_id"], action["value"], actor, services)
    if isinstance(reply, MirrorList):  # paging: the list replaces itself
        await respond(**render(reply).as_kwargs(), replace_original=True)
        return
    # A change is followed and re-rendered as the person who made it.
    changed = isinstance(reply, _CHANGES)
    gitlab = await services.accounts.gitlab_or_none(actor.slack_user) if changed else None
    await deliver(
        reply,
        client=client,
        respond=respond,
        channel_id=actor.channel_id,
        user_id=actor.user_id,
        services=services,
        gitlab=gitlab,
    )
    if gitlab is None:
        return
    target = MirrorRef.model_validate_json(action["value"])
    if from_home(body):
        await publish_home(actor.slack_user, client, services)
    elif target.mirror_id is not None:
        await refresh_message(body, respond, gitlab, target.project, target.mirror_id)


async def refresh_message(
    body: dict[str, Any],
    respond: Respond,
    gitlab: GitLabClient,
    project: ProjectRef,
    mirror_id: int,
) -> None:
    """Show the mirror's new state in the message whose button was clicked."""
    message = body.get("message")
    if not message:  # ephemeral messages do not come back: re-render the list
        listing = await list_project_mirrors(gitlab, project)
        await respond(**render(MirrorList(listing)).as_kwargs(), replace_original=True)
        return
    blocks = list(message.get("blocks") or [])
    position = next(
        (
            i
            for i, b in enumerate(blocks)
            if b.get("type") == "actions" and b.get("block_id") == f"mirror-{mirror_id}"
        ),
        None,
    )
    if position is None:
        return  # an alert or another message kept current elsewhere
    try:
        mirror = await gitlab.get_push_mirror(project, mirror_id)
        replacement = mirror_blocks.mirror_row(project, mirror)
    except MirrorNotFound:
        replacement = [context_block(f"Push mirror {mirror_id} was deleted.")]
    start = (
        position - 1 if position > 0 and blocks[position - 1].get("type") == "section" else position
    )
    blocks[start : position + 1] = replacement
    await respond(text=message.get("text") or "mirrors", blocks=blocks, replace_original=True)
