"""An ASGI middleware: one log line and one metric per HTTP request."""

from __future__ import annotations

import logging
import time
from collections.abc import Collection
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot import metrics

log = logging.getLogger("mirrorbot.http")


class RequestLog:
    """`routes` are the paths named in logs and metrics (any other path is "other", so a
    scan of random URLs cannot grow the metrics); a success on a path of `quiet_successes`
    is logged at DEBUG, everything else at INFO."""

    def __init__(
        self, app: ASGIApp, *, routes: Collection[str], quiet_successes: Collection[str] = ()
    ) -> None:
        self.app = app
        self._routes = frozenset(routes)
        self._quiet_successes = frozenset(quiet_successes)

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
            route = path if path in self._routes else "other"
            metrics.HTTP_REQUESTS.labels(route, str(status["code"])).inc()
            quiet = route in self._quiet_successes and 200 <= status["code"] < 300
            log.log(
                logging.DEBUG if quiet else logging.INFO,
                "%s %s -> %s in %.1f ms",
                scope.get("method"),
                route,
                status["code"],
                (time.monotonic() - started) * 1000,
            )
