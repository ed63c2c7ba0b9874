"""`POST /gitlab/webhook`: store the event, then answer 200.

Its door (`bot.server`) has already checked X-Gitlab-Token against GITLAB_WEBHOOK_SECRET
and the body's size (`inbox.MAX_BODY_BYTES`). A plain ASGI app, not a Starlette route:
GitLab can send thousands of events a second, and Starlette's middleware, routing and
Request and Response objects were a good part of each event's cost."""

from __future__ import annotations

from typing import Any

from starlette.types import Receive, Scope, Send

from bot.domain import inbox
from bot.doors import answer
from bot.services import Services

PATH = "/gitlab/webhook"
TOKEN_HEADER = "x-gitlab-token"  # noqa: S105 - a header name


class GitLabWebhook:
    def __init__(self, services: Services, writer: inbox.InboxWriter) -> None:
        self._services = services
        self._writer = writer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        status, content = await self._store(scope, receive)
        await answer(send, status, content)

    async def _store(self, scope: Scope, receive: Receive) -> tuple[int, dict[str, Any]]:
        message = await receive()  # the door read the body whole and hands it over at once
        body = message.get("body", b"")
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope["headers"]
        }
        try:
            stored = await self._writer.store(headers, body)
        except inbox.WebhookRejected as exc:
            return exc.status, {"error": exc.message}
        except Exception:  # the writer logged why, once for its batch
            return 503, {"error": "the event could not be stored; send it again"}
        return 200, {"status": "stored" if stored else "duplicate"}
