"""The Bolt app: one AsyncApp whose listeners get the domain services through `context`,
with what outlives a request (the bot's identity, replies still in flight)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot import metrics
from bot.domain.delivery_health import DeliveryHealth
from bot.doors import SLACK_MAX_AGE_SECONDS
from bot.services import Services
from bot.slack import delivery, listeners, rotations
from bot.slack.after_ack import AfterAck
from bot.slack.identity import BotIdentity
from bot.slack.outbox_sender import TOKEN_REJECTED
from bot.slack.replays import FirstUse
from bot.slack_workspace import slack_api_base
from bot.store.seen_requests import SeenSlackRequests

log = logging.getLogger(__name__)


class _UnusedEnvTokenNotice(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN from the environment even when it is given a client, then
    warns at start-up that the token goes unused. It does, on purpose: each request gets its
    token from `authorize`. The warning would only make an operator doubt a sound setup."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


_BOLT_APP_LOG = logging.getLogger("slack_bolt.AsyncApp")
_BOLT_APP_LOG.addFilter(_UnusedEnvTokenNotice())


def build_slack_client(
    services: Services,
    *,
    sleep_on_rate_limit: bool = True,
    authenticated: bool = True,
    timeout: int = 10,
) -> AsyncWebClient:
    """A Web API client. Interactive replies sleep out a 429's Retry-After (twice at most);
    the outbox sender reschedules instead, so it asks for no such sleeping."""
    settings = services.settings
    assert settings.slack_bot_token is not None
    handlers: list[Any] = [AsyncConnectionErrorRetryHandler()]
    if sleep_on_rate_limit:
        handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))
    return AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value() if authenticated else None,
        base_url=slack_api_base(settings),
        timeout=timeout,
        retry_handlers=handlers,
    )


@dataclass(frozen=True)
class SlackSurface:
    app: AsyncApp
    identity: BotIdentity
    after_ack: AfterAck
    delivery_health: DeliveryHealth

    async def start(self) -> None:
        """Ask Slack who the bot is before the first request needs it."""
        try:
            await self.identity.ask()
        except (SlackApiError, OSError) as exc:  # asked again on the first request
            log.warning("Slack auth.test failed at start-up: %s", exc)
            error = exc.response.get("error") if isinstance(exc, SlackApiError) else None
            if error in TOKEN_REJECTED:  # on /healthz at once, not at the first alert
                self.delivery_health.failed(str(error))
                metrics.SLACK_TOKEN_REJECTED.set(1)

    async def stop(self, grace: float) -> None:
        await self.after_ack.drain(grace)
        await delivery.stop_following()
        await rotations.stop_driving()


def build_slack_surface(services: Services, *, verify_requests: bool = True) -> SlackSurface:
    """The Bolt app. Over HTTP every request is verified with the signing secret; Socket
    Mode payloads come over the authenticated WebSocket and carry no signature."""
    settings = services.settings
    signing_secret = settings.slack_signing_secret
    assert settings.slack_bot_token is not None
    assert signing_secret is not None or not verify_requests
    # Requests get their token from `identity` (one auth.test), not from the app's client.
    identity, after_ack = BotIdentity(build_slack_client(services)), AfterAck()
    client = build_slack_client(services, authenticated=False)
    app = AsyncApp(
        client=client,
        authorize=identity,
        signing_secret=signing_secret.get_secret_value() if signing_secret else None,
        request_verification_enabled=verify_requests,
        # Answer as soon as a listener returns; listeners ack, hand their slow part to
        # `after_ack` and return (see bot/slack/after_ack.py).
        process_before_response=True,
    )

    # Signed requests are recorded before their work runs (Socket Mode's carry no signature).
    seen = SeenSlackRequests(services.engine, SLACK_MAX_AGE_SECONDS) if verify_requests else None

    # One middleware, not two: Bolt inspects and fills each one's arguments per request.

    async def with_services(
        context: dict[str, Any],
        body: dict[str, Any],
        req: AsyncBoltRequest,
        next: Callable[[], Awaitable[Any]],
    ) -> Any:
        """Hand listeners the services, and count each request's outcome."""
        context["services"] = services
        context["after_ack"] = after_ack
        signatures = req.headers.get("x-slack-signature") or []
        if seen is not None and signatures:
            context["first_use"] = FirstUse(seen, signatures[0])
        response = await next()
        kind = str(body.get("type") or ("command" if "command" in body else "other"))
        status = getattr(response, "status", 200)
        metrics.SLACK_HANDLER_OUTCOMES.labels(kind, "ok" if status < 400 else str(status)).inc()
        return response

    app.use(with_services)
    listeners.register(app)
    return SlackSurface(app, identity, after_ack, services.delivery_health)
