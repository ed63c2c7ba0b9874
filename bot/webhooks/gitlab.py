"""`POST /gitlab/webhook`: check the secret, store the event, then answer 200.

A plain ASGI app, served ahead of Starlette's routing (`bot.server`): GitLab can send
thousands of events a second, and Starlette's middleware, routing and Request and Response
objects were a good part of each event's cost."""

from __future__ import annotations

import hmac
import json
from typing import Any

from starlette.types import Receive, Scope, Send

from bot.domain import inbox
from bot.services import Services

PATH = "/gitlab/webhook"


class GitLabWebhook:
    def __init__(self, services: Services, writer: inbox.InboxWriter) -> None:
        self._services = services
        self._writer = writer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"application/json")]
        if scope["method"] == "POST":
            status, answer = await self._answer(scope, receive)
        else:
            status, answer = 405, {"error": "GitLab webhooks are POSTed"}
            headers.append((b"allow", b"POST"))
        body = json.dumps(answer).encode()
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _answer(self, scope: Scope, receive: Receive) -> tuple[int, dict[str, Any]]:
        secret = self._services.settings.gitlab_webhook_secret
        if secret is None:
            return 503, {"error": "GITLAB_WEBHOOK_SECRET is not configured"}
        headers = {name.decode("latin-1").lower(): value for name, value in scope["headers"]}
        given = headers.get("x-gitlab-token", b"")
        if not hmac.compare_digest(given, secret.get_secret_value().encode()):
            return 401, {"error": "invalid X-Gitlab-Token"}
        declared = headers.get("content-length", b"")
        if declared.isdigit() and int(declared) > inbox.MAX_BODY_BYTES:
            return 413, {"error": "payload too large"}
        body = await _read_limited(receive)
        if body is None:
            return 413, {"error": "payload too large"}
        text_headers = {name: value.decode("latin-1") for name, value in headers.items()}
        try:
            stored = await self._writer.store(text_headers, body)
        except inbox.WebhookRejected as exc:
            return exc.status, {"error": exc.message}
        except Exception:  # the writer logged why, once for its batch
            return 503, {"error": "the event could not be stored; send it again"}
        return 200, {"status": "stored" if stored else "duplicate"}


async def _read_limited(receive: Receive) -> bytes | None:
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None  # GitLab hung up: whatever is answered, nobody reads it
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > inbox.MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)
