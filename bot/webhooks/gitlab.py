"""`POST /gitlab/webhook`: check the secret, store the event, then answer 200."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bot.domain import inbox
from bot.services import Services


def gitlab_webhook_endpoint(
    services: Services, writer: inbox.InboxWriter
) -> Callable[[Request], Awaitable[Response]]:
    async def receive(request: Request) -> Response:
        secret = services.settings.gitlab_webhook_secret
        if secret is None:
            return JSONResponse({"error": "GITLAB_WEBHOOK_SECRET is not configured"}, 503)
        given = request.headers.get("x-gitlab-token", "")
        if not hmac.compare_digest(given.encode(), secret.get_secret_value().encode()):
            return JSONResponse({"error": "invalid X-Gitlab-Token"}, 401)
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > inbox.MAX_BODY_BYTES:
            return JSONResponse({"error": "payload too large"}, 413)
        body = await _read_limited(request)
        if body is None:
            return JSONResponse({"error": "payload too large"}, 413)
        try:
            stored = await writer.store(request.headers, body)
        except inbox.WebhookRejected as exc:
            return JSONResponse({"error": exc.message}, exc.status)
        return JSONResponse({"status": "stored" if stored else "duplicate"})

    return receive


async def _read_limited(request: Request) -> bytes | None:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > inbox.MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
