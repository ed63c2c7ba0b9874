"""The device login in Slack: start it for `/mirror login` (or *Start again*), and tell
each person how theirs ended by replacing the login message (its response_url lasts 30
minutes, longer than a device code's 5), else ephemerally in the channel, else by DM."""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.commands.results import DeviceLoginFinished, DeviceLoginStarted, Reply
from bot.commands.run import Actor, run_guarded
from bot.domain.device_login import POLL_BATCH, DeviceLogins, FinishedLogin
from bot.slack.blocks.replies import render
from bot.slack.delivery import Respond

log = logging.getLogger(__name__)


async def start_device_login(
    logins: DeviceLogins,
    actor: Actor,
    response_url: str | None,
    respond: Respond,
    *,
    replacing: bool = False,
) -> None:
    """`replacing`: from a click on the old login message, which the new one replaces."""

    async def start() -> Reply:
        started = await logins.start(
            actor.slack_user, channel_id=actor.channel_id, response_url=response_url
        )
        return DeviceLoginStarted(started)

    reply = await run_guarded(start)
    extra = {"replace_original": True} if replacing else {}
    await respond(**render(reply).as_kwargs(), response_type="ephemeral", **extra)


async def advance_device_logins(logins: DeviceLogins, slack: AsyncWebClient) -> int:
    """One pass of the login worker: poll what is due, end what expired, tell who is done."""
    polled = await logins.poll_due()
    await logins.expire_overdue()
    for finished in await logins.unnotified():
        if await logins.mark_notified(finished.login_id):  # one replica tells
            await _tell(finished, slack)
    return 0 if polled < POLL_BATCH else 1  # a full batch: more may be due


async def _tell(finished: FinishedLogin, slack: AsyncWebClient) -> None:
    message = render(DeviceLoginFinished(finished)).as_kwargs()
    if finished.response_url:
        try:
            answer = await AsyncWebhookClient(finished.response_url).send(
                **message, replace_original=True, response_type="ephemeral"
            )
            if answer.status_code == 200:
                return
            log.info("the login message could not be replaced (%s)", answer.status_code)
        except Exception as exc:  # an expired or unreachable response_url: try the API
            log.info("the login message could not be replaced: %s", type(exc).__name__)
    who = finished.who.user_id
    try:
        await slack.chat_postEphemeral(channel=finished.channel_id, user=who, **message)
    except SlackApiError:
        await slack.chat_postMessage(channel=who, **message)
