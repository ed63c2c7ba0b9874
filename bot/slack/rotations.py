"""Driving rotations from Slack: the progress message kept current at each step, a
rotation resumed when its driver is gone (a restart), and the day-old ones cleaned up.

The state machine is bot/domain/rotations.py; this only says where each step is shown.
"""

from __future__ import annotations

import asyncio
import logging

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.accounts import SlackUser
from bot.domain.approvals import Status
from bot.domain.errors import DomainError
from bot.domain.rotations import Rotation, State
from bot.gitlab.client import GitLabClient
from bot.gitlab.errors import GitLabError
from bot.services import Services
from bot.slack.blocks.rotations import rotation_expired_notice, rotation_message

log = logging.getLogger(__name__)
# Rotations this process drives; kept so none is garbage-collected, cancelled on stop.
_driving: set[asyncio.Task[None]] = set()


def start_driving(rotation_id: str, services: Services, client: AsyncWebClient) -> None:
    task = asyncio.ensure_future(drive(rotation_id, services, client))
    _driving.add(task)
    task.add_done_callback(_driving.discard)


async def stop_driving() -> None:
    """On shutdown: stop, releasing each rotation for whoever runs next (`drive`'s
    `finally`): the state is in the database, nothing is lost."""
    tasks = list(_driving)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def show(rotation: Rotation, services: Services, client: AsyncWebClient) -> None:
    """Update the progress message, or post it when there is none yet (after approval)."""
    message = rotation_message(rotation)
    try:
        if rotation.message_ts:
            await client.chat_update(
                channel=rotation.channel_id, ts=rotation.message_ts, **message.as_kwargs()
            )
            return
        posted = await client.chat_postMessage(channel=rotation.channel_id, **message.as_kwargs())
        await services.rotations.set_message(rotation.id, str(posted["ts"]))
    except SlackApiError as exc:
        log.warning("could not show rotation %s: %s", rotation.id, exc.response.get("error"))


async def _gitlab_of(rotation: Rotation, services: Services) -> GitLabClient | None:
    """The requester's token, as every change they asked for; the service token when their
    link is gone (a cleanup must still be able to delete the new mirror)."""
    gitlab = await services.accounts.gitlab_or_none(
        SlackUser(rotation.team_id, rotation.requester_id)
    )
    return gitlab or services.service_gitlab()


async def drive(rotation_id: str, services: Services, client: AsyncWebClient) -> None:
    """Take a rotation (held by this process) as far as it goes, showing each step."""
    rotation = await services.rotations.get(rotation_id)
    assert rotation is not None
    gitlab = await _gitlab_of(rotation, services)
    if gitlab is None:
        await services.rotations.release(rotation_id)
        return
    was_expiring = rotation.state is State.CLEANING_UP

    async def on_change(moved: Rotation) -> None:
        current = await services.rotations.get(moved.id)
        await show(current or moved, services, client)

    try:
        ended = await services.rotations.drive(
            rotation_id,
            gitlab,
            on_change,
            interval=services.follow.interval,
            give_up_after=services.follow.timeout,
        )
    except (GitLabError, DomainError) as exc:
        log.warning("rotation %s paused: %s", rotation_id, exc.user_message)
        return
    if ended.state is State.EXPIRED and was_expiring:
        try:
            await client.chat_postMessage(
                channel=ended.requester_id, **rotation_expired_notice(ended).as_kwargs()
            )
        except SlackApiError as exc:
            log.warning("could not tell the requester of %s: %s", ended.id, exc.response)


async def resume_rotations(services: Services, client: AsyncWebClient) -> int:
    """One pass of the worker: end rotations whose approval said no, clean up day-old
    ones, and resume every unfinished one nobody drives."""
    rotations = services.rotations
    for waiting in await rotations.awaiting_approval():
        assert waiting.approval_id is not None
        approval = await services.approvals.get(waiting.approval_id)
        if approval is not None and approval.status in (
            Status.REJECTED,
            Status.CANCELLED,
            Status.EXPIRED,
            Status.FAILED,  # approved, then interrupted before the rotation started
        ):
            ended = await rotations.refused(
                waiting.approval_id, f"the request was {approval.status}"
            )
            if ended is not None:
                await show(ended, services, client)
    await rotations.expire_due()
    resumed = 0
    for rotation_id in await rotations.interrupted():
        if await rotations.claim(rotation_id):
            start_driving(rotation_id, services, client)
            resumed += 1
    return resumed
