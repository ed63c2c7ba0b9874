"""Where each result goes in Slack: ephemeral to the caller, or posted in the channel
naming who acted; sync replies follow their mirrors and update themselves."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.commands.results import (
    ApprovalNeeded,
    ChangeMade,
    InventoryReport,
    Muted,
    Reply,
    RotationProgress,
    SyncStarted,
)
from bot.domain.inventory import inventory_csv
from bot.domain.mirrors import follow_push_mirror
from bot.gitlab.client import GitLabClient
from bot.gitlab.errors import GitLabError
from bot.gitlab.models import PushMirror
from bot.services import Services
from bot.slack import rotations
from bot.slack.blocks import fleet, replies
from bot.slack.blocks.text import SlackMessage, context

log = logging.getLogger(__name__)

Respond = Callable[..., Awaitable[Any]]
_PUBLIC_REPLIES = (ChangeMade, SyncStarted, ApprovalNeeded, Muted, RotationProgress)
# Follow-ups run after the ack; keep references so they are not garbage-collected.
_background: set[asyncio.Task[None]] = set()


def in_background(coroutine: Awaitable[None]) -> None:
    task = asyncio.ensure_future(coroutine)
    _background.add(task)
    task.add_done_callback(_background.discard)


async def stop_following() -> None:
    """On shutdown: stop the follow-ups (they only update progress messages, for minutes)
    rather than leave them to die with the event loop."""
    following = list(_background)
    for task in following:
        task.cancel()
    await asyncio.gather(*following, return_exceptions=True)


async def deliver(
    reply: Reply,
    *,
    client: AsyncWebClient,
    respond: Respond | None,
    channel_id: str,
    user_id: str,
    services: Services,
    gitlab: GitLabClient | None = None,
) -> None:
    """Send `reply` where it belongs. `respond` is None for modal submissions."""
    message = replies.render(reply)
    if not isinstance(reply, _PUBLIC_REPLIES):
        await tell_user(
            message, client=client, respond=respond, channel_id=channel_id, user_id=user_id
        )
        if isinstance(reply, InventoryReport) and reply.inventory.rows:
            await send_inventory_file(reply, client=client, user_id=user_id)
        return
    ts = await post_in_channel(message, client=client, channel_id=channel_id)
    if ts is None:
        hint = SlackMessage(
            message.text,
            [
                *message.blocks,
                context(
                    "I could not post this in the channel: invite me with `/invite @Mirrorbot`."
                ),
            ],
        )
        await tell_user(
            hint, client=client, respond=respond, channel_id=channel_id, user_id=user_id
        )
        return
    if isinstance(reply, ApprovalNeeded):
        await services.approvals.set_message(reply.approval.id, ts)
    if isinstance(reply, RotationProgress):  # a new rotation: its message follows it
        await services.rotations.set_message(reply.rotation.id, ts)
        rotations.start_driving(reply.rotation.id, services, client)
    if isinstance(reply, SyncStarted) and gitlab is not None and reply.mirrors:
        in_background(
            follow_sync(
                reply, gitlab, client=client, channel_id=channel_id, ts=ts, services=services
            )
        )


async def tell_user(
    message: SlackMessage,
    *,
    client: AsyncWebClient,
    respond: Respond | None,
    channel_id: str,
    user_id: str,
    replace_original: bool = False,
) -> None:
    if respond is not None:
        await respond(
            **message.as_kwargs(), response_type="ephemeral", replace_original=replace_original
        )
        return
    try:
        await client.chat_postEphemeral(channel=channel_id, user=user_id, **message.as_kwargs())
    except SlackApiError:
        # Not in that channel: a direct message from the app still reaches the person.
        await client.chat_postMessage(channel=user_id, **message.as_kwargs())


async def send_inventory_file(
    reply: InventoryReport, *, client: AsyncWebClient, user_id: str
) -> None:
    """The full list as a CSV file, in the caller's direct messages with the app: the
    inventory lists what the caller's token can read, which the channel may not."""
    try:
        opened = await client.conversations_open(users=user_id)
        await client.files_upload_v2(
            channel=str(opened["channel"]["id"]),
            filename=fleet.inventory_filename(reply),
            title=f"Mirrors of {reply.inventory.group_path}/",
            content=inventory_csv(reply.inventory),
            initial_comment=fleet.inventory_summary(reply).text,
        )
    except SlackApiError as exc:
        log.warning("could not upload the inventory: %s", exc.response.get("error"))
        await client.chat_postMessage(
            channel=user_id,
            text="I could not upload the inventory file; try `/mirror inventory` again later.",
        )


async def post_in_channel(
    message: SlackMessage, *, client: AsyncWebClient, channel_id: str
) -> str | None:
    try:
        response = await client.chat_postMessage(channel=channel_id, **message.as_kwargs())
    except SlackApiError as exc:
        log.warning("could not post in %s: %s", channel_id, exc.response.get("error"))
        return None
    return str(response["ts"])


async def follow_sync(
    reply: SyncStarted,
    gitlab: GitLabClient,
    *,
    client: AsyncWebClient,
    channel_id: str,
    ts: str,
    services: Services,
) -> None:
    """Update the sync message as each mirror moves, until all settle (bounded in time)."""
    ref = reply.project
    current: dict[int, PushMirror] = {m.id: m for m in reply.mirrors}
    settled: set[int] = set()

    async def follow(requested: PushMirror) -> None:
        async for progress in follow_push_mirror(
            gitlab,
            ref,
            requested.id,
            interval=services.follow.interval,
            give_up_after=services.follow.timeout,
            requested=requested,
        ):
            current[requested.id] = progress.mirror
            if progress.settled:
                settled.add(requested.id)
            await _update(finished=False)

    async def _update(finished: bool) -> None:
        shown = replace(
            reply, mirrors=[current[m.id] for m in reply.mirrors], settled=frozenset(settled)
        )
        message = replies.sync_progress(shown, finished=finished)
        try:
            await client.chat_update(channel=channel_id, ts=ts, **message.as_kwargs())
        except SlackApiError as exc:
            log.warning("could not update the sync message: %s", exc.response.get("error"))

    try:
        await asyncio.gather(*(follow(mirror) for mirror in reply.mirrors))
    except GitLabError as exc:
        log.info("stopped following a sync: %s", exc.user_message)
    await _update(finished=True)
