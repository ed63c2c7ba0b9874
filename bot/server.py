"""The ASGI server: Slack at /slack/events, GitLab at /gitlab/webhook, health and metrics.
Migrations run on start; the background workers run while it serves.

The routes are doors (bot/doors.py): each says here how it authenticates and how much body
it takes, and nothing else is served."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import SecretStr
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Router, request_response
from starlette.types import ASGIApp

from bot import metrics as metrics_module
from bot.config import Settings
from bot.domain import inbox, outbox, project_access
from bot.doors import (
    SLACK_MAX_BODY_BYTES,
    Door,
    Doors,
    Public,
    SharedSecretHeader,
    SlackSignature,
)
from bot.http_log import RequestLog
from bot.services import Services, build_services
from bot.slack.app import build_slack_client, build_slack_surface
from bot.slack.channel_directory import SlackChannelDirectory
from bot.slack.ids import REQUEST_PATH
from bot.store.migrate import upgrade_database
from bot.webhooks.gitlab import PATH as WEBHOOK_PATH
from bot.webhooks.gitlab import TOKEN_HEADER as WEBHOOK_TOKEN_HEADER
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
    services.channels = SlackChannelDirectory(build_slack_client(services))
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
        slack = services.delivery_health
        if slack.problem is not None:
            # Still 200: a restart cannot fix a revoked token, and the webhook must stay up.
            since = slack.since.isoformat() if slack.since else None
            return JSONResponse(
                {"status": "degraded", "slack": {"token_rejected": slack.problem, "since": since}}
            )
        return JSONResponse({"status": "ok"})

    async def metrics(request: Request) -> Response:
        metrics_module.OUTBOX_DEPTH.set(await outbox.depth(services.sessions))
        metrics_module.INBOX_DEPTH.set(await inbox.depth(services.sessions))
        for problem, count in (await project_access.problem_counts(services.sessions)).items():
            metrics_module.PROJECTS_NOT_CHECKED.labels(problem).set(count)
        per_mirror = CollectorRegistry(auto_describe=False)
        per_mirror.register(
            metrics_module.MirrorObservations(await services.subscriptions.every_observation())
        )
        body = generate_latest() + generate_latest(per_mirror)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def lifespan(app: object) -> AsyncIterator[None]:
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

    doors = [
        # A push of many commits is a big event: the inbox's own limit, not Slack's.
        Door(
            WEBHOOK_PATH,
            "POST",
            SharedSecretHeader(WEBHOOK_TOKEN_HEADER, _secret(settings.gitlab_webhook_secret)),
            GitLabWebhook(services, inbox_writer),
            max_body_bytes=inbox.MAX_BODY_BYTES,
            refusal="invalid X-Gitlab-Token",
        ),
        Door("/healthz", "GET", Public(), request_response(healthz)),
        Door("/metrics", "GET", Public(), request_response(metrics)),
    ]
    if not socket_mode:
        # In Socket Mode Slack's payloads come over the app-token WebSocket only: an HTTP
        # route for them would be a door anyone could use to act as any Slack user.
        assert settings.slack_signing_secret is not None
        doors.append(
            Door(
                REQUEST_PATH,
                "POST",
                SlackSignature(settings.slack_signing_secret.get_secret_value()),
                request_response(slack_events),
                max_body_bytes=SLACK_MAX_BODY_BYTES,
                refusal="invalid request",
            )
        )
    if settings.gitlab_webhook_secret is None:
        log.warning("GITLAB_WEBHOOK_SECRET is not set: %s answers 401 to everything", WEBHOOK_PATH)
    return RequestLog(
        Doors(doors, lifespan=Router(lifespan=lifespan)),
        routes=[door.path for door in doors],
        # GitLab can send thousands of events a second: a line for each stored one drowned
        # everything else and cost the intake a good share of its latency. The metrics
        # count every one, the inbox worker logs a line per pass, refusals stay at INFO.
        quiet_successes=[WEBHOOK_PATH],
    )


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None
