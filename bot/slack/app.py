"""The Bolt app: one AsyncApp whose listeners get the domain services through `context`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot import metrics
from bot.services import Services
from bot.slack import listeners
from bot.slack_workspace import slack_api_base


def build_slack_client(services: Services, *, sleep_on_rate_limit: bool = True) -> AsyncWebClient:
    """A Web API client. Interactive replies sleep out a 429's Retry-After (twice at most);
    the outbox sender reschedules instead, so it asks for no such sleeping."""
    settings = services.settings
    assert settings.slack_bot_token is not None
    handlers: list[Any] = [AsyncConnectionErrorRetryHandler()]
    if sleep_on_rate_limit:
        handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))
    return AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=slack_api_base(settings),
        timeout=10,
        retry_handlers=handlers,
    )


def build_bolt_app(services: Services, *, verify_requests: bool = True) -> AsyncApp:
    """The Bolt app. Over HTTP every request is verified with the signing secret; Socket
    Mode payloads come over the authenticated WebSocket and carry no signature."""
    settings = services.settings
    signing_secret = settings.slack_signing_secret
    assert settings.slack_bot_token is not None
    assert signing_secret is not None or not verify_requests
    client = build_slack_client(services)
    app = AsyncApp(
        client=client,
        signing_secret=signing_secret.get_secret_value() if signing_secret else None,
        request_verification_enabled=verify_requests,
        # Ack at once; listeners go on after the response (a long-running server, not FaaS).
        process_before_response=False,
    )

    async def inject_services(context: dict[str, Any], next: Callable[[], Awaitable[None]]) -> None:
        context["services"] = services
        await next()

    async def count_outcomes(body: dict[str, Any], next: Callable[[], Awaitable[Any]]) -> Any:
        response = await next()
        kind = str(body.get("type") or ("command" if "command" in body else "other"))
        status = getattr(response, "status", 200)
        metrics.SLACK_HANDLER_OUTCOMES.labels(kind, "ok" if status < 400 else str(status)).inc()
        return response

    app.use(inject_services)
    app.use(count_outcomes)
    listeners.register(app)
    return app
