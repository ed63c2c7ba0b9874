"""What every button click shares: who clicked and where, the ack, and the one-line
problem when the work after the ack fails."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.commands.run import Actor
from bot.services import Services
from bot.slack.after_ack import later
from bot.slack.delivery import Respond
from bot.slack.listeners.guard import report_failure

# The work a click asks for, run after the ack: (body, action, client, respond, services).
Answer = Callable[
    [dict[str, Any], dict[str, Any], AsyncWebClient, Respond, Services], Awaitable[None]
]


def actor_of(body: dict[str, Any]) -> Actor:
    """Who clicked, and where: a click in the App Home has no channel, so answers go to
    the person's direct messages with the app."""
    user = body["user"]
    team = user.get("team_id") or body.get("team", {}).get("id", "")
    channel = (
        (body.get("channel") or {}).get("id")
        or body.get("container", {}).get("channel_id")
        or user["id"]
    )
    return Actor(team, user["id"], channel)


def direct_message(client: AsyncWebClient, user_id: str) -> Respond:
    async def send(**message: Any) -> Any:
        message.pop("replace_original", None)
        message.pop("response_type", None)
        return await client.chat_postMessage(channel=user_id, **message)

    return send


def click_listener(answer: Answer) -> Callable[..., Awaitable[None]]:
    """A Bolt listener that acks at once and runs `answer` after the ack. `answer`
    replies through the click's response_url or, where there is none (the App Home), in the
    app's DM; whatever it raises is told to the person the same way."""

    async def listener(
        ack: Any,
        body: dict[str, Any],
        action: dict[str, Any],
        client: AsyncWebClient,
        respond: Respond | None,
        context: dict[str, Any],
    ) -> None:
        await ack()
        tell = respond or direct_message(client, body["user"]["id"])
        # Made when it runs: work dropped unstarted (a replay) leaves no coroutine behind.
        work = partial(answer, body, action, client, tell, context["services"])
        later(context, _telling_failures(work, tell))

    return listener


async def _telling_failures(work: Callable[[], Awaitable[None]], tell: Respond) -> None:
    try:
        await work()
    except Exception as exc:
        await report_failure(exc, tell)
