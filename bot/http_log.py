"""An ASGI middleware: one log line and one metric per HTTP request."""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot import metrics

log = logging.getLogger("mirrorbot.http")
KNOWN_ROUTES = ("/slack/events", "/gitlab/webhook", "/healthz", "/metrics")
# Successes on these routes are logged at DEBUG: GitLab can send thousands of events a
# second, a line each drowned everything else and cost the intake a good share of its
# latency. The metrics count every one, and the inbox worker logs a line per pass.
ROUTINE_SUCCESS = ("/gitlab/webhook",)


class RequestLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status: dict[str, Any] = {"code": 500}

        async def send_and_note(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            path = scope.get("path", "")
            route = path if path in KNOWN_ROUTES else "other"
            metrics.HTTP_REQUESTS.labels(route, str(status["code"])).inc()
            routine = route in ROUTINE_SUCCESS and 200 <= status["code"] < 300
            log.log(
                logging.DEBUG if routine else logging.INFO,
                "%s %s -> %s in %.1f ms",
                scope.get("method"),
                route,
                status["code"],
                (time.monotonic() - started) * 1000,
            )
