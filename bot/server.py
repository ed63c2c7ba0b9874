"""The ASGI server: Slack at /slack/events, GitLab at /gitlab/webhook, health and metrics.
Migrations run on start; the background workers run while it serves."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from bot import metrics as metrics_module
from bot.config import Settings
from bot.domain import inbox, outbox
from bot.http_log import RequestLog
from bot.services import Services, build_services
from bot.slack.app import build_slack_client, build_slack_surface
from bot.slack.ids import REQUEST_PATH
from bot.store.migrate import upgrade_database
from bot.webhooks.gitlab import PATH as WEBHOOK_PATH
from bot.webhooks.gitlab import GitLabWebhook
from bot.workers import Workers, WorkerTiming

log = logging.getLogger(__name__)
# On shutdown, replies already acked get this long to reach Slack.
REPLY_DRAIN_SECONDS = 5.0


def create_app(
    settings: Settings,
    services: Services | None = None,
    timing: WorkerTiming | None = None,
    *,
    socket_mode: bool = False,
) -> ASGIApp:
    """The ASGI app. With `socket_mode`, Slack is reached over Socket Mode (SLACK_APP_TOKEN)
    while the webhook, health and metrics are still served over HTTP."""
    services = services or build_services(settings)
    slack = build_slack_surface(services, verify_requests=not socket_mode)
    # The outbox waits longer for Slack than a reply does: a post given up on while Slack
    # is only slow would be posted again.
    outbox_client = build_slack_client(
        services, sleep_on_rate_limit=False, timeout=outbox.SEND_TIMEOUT
    )
    workers = Workers(services, outbox_client, timing)
    slack_handler = AsyncSlackRequestHandler(slack.app)
    inbox_writer = inbox.InboxWriter(services.engine)

    async def slack_events(request: Request) -> Response:
        return await slack_handler.handle(request)

    async def healthz(request: Request) -> Response:
        try:
            async with services.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception:
            log.warning("health check: database unreachable", exc_info=True)
            return JSONResponse({"status": "unhealthy", "database": "unreachable"}, 503)
        return JSONResponse({"status": "ok"})

    async def metrics(request: Request) -> Response:
        metrics_module.OUTBOX_DEPTH.set(await outbox.depth(services.sessions))
        metrics_module.INBOX_DEPTH.set(await inbox.depth(services.sessions))
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await asyncio.to_thread(upgrade_database, settings.database_url)
        await slack.start()
        workers.start()
        # What start-up built lives as long as the process: keep it out of the collector's
        # full passes, which otherwise pause every request for tens of ms under load.
        gc.collect()
        gc.freeze()
        socket = None
        if socket_mode:
            assert settings.slack_app_token is not None
            socket = AsyncSocketModeHandler(slack.app, settings.slack_app_token.get_secret_value())
            await socket.connect_async()  # type: ignore[no-untyped-call]
        try:
            yield
        finally:
            if socket is not None:
                await socket.close_async()  # type: ignore[no-untyped-call]
            await slack.stop(REPLY_DRAIN_SECONDS)
            await inbox_writer.close()
            await workers.stop()
            await services.close()

    routes = [
        Route(REQUEST_PATH, slack_events, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    starlette = Starlette(routes=routes, lifespan=lifespan)
    return RequestLog(
        WebhookAhead(GitLabWebhook(services, inbox_writer), starlette),
        routes=[WEBHOOK_PATH, *(route.path for route in routes)],
        # GitLab can send thousands of events a second: a line for each stored one drowned
        # everything else and cost the intake a good share of its latency. The metrics
        # count every one, the inbox worker logs a line per pass, refusals stay at INFO.
        quiet_successes=[WEBHOOK_PATH],
    )


class WebhookAhead:
    """`/gitlab/webhook` straight to its handler, everything else (lifespan too) to
    Starlette: at thousands of events a second, Starlette's middleware and routing cost
    about a quarter of what each event did."""

    def __init__(self, webhook: ASGIApp, rest: ASGIApp) -> None:
        self._webhook = webhook
        self._rest = rest

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == WEBHOOK_PATH:
            await self._webhook(scope, receive, send)
        else:
            await self._rest(scope, receive, send)
