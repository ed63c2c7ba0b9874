"""Every HTTP route ("door"), how it tells who knocks, and how much body it takes.

One table (built in `bot.server`) says for each path its method, its check and its body
limit; `Doors` enforces all three before a handler sees a byte, so no route can forget
one. A body is counted as it arrives — the declared Content-Length first, then the chunks
as they stream, chunked encoding included — and is never read past its door's limit.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from slack_sdk.signature import SignatureVerifier
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Slack's largest real payloads (a modal's full state, a message with 50 blocks) are tens
# of KiB; 1 MiB is generous and keeps a flood of big bodies cheap to refuse.
SLACK_MAX_BODY_BYTES = 1024 * 1024
# Health and metrics take no body.
NO_BODY = 0
# A body that has not arrived whole by then is refused (408): a client that dribbles one
# byte at a time holds no connection for long.
BODY_SECONDS = 10.0
# Slack refuses requests signed more than 5 minutes ago; so does the bot.
SLACK_MAX_AGE_SECONDS = 300

Headers = Mapping[str, bytes]


class Knock(Protocol):
    """How a door authenticates a request. `needs_body`: whether the check reads the body
    (a check on a header alone runs before the body is read)."""

    @property
    def needs_body(self) -> bool: ...

    def plausible(self, headers: Headers) -> bool:
        """A check of the headers alone, before any body is read."""
        ...

    def admits(self, headers: Headers, body: bytes) -> bool: ...


@dataclass(frozen=True)
class SlackSignature:
    """Slack's v0 signature of timestamp and body with the signing secret; a timestamp
    more than 5 minutes away is refused, so a captured request cannot be replayed."""

    signing_secret: str = field(repr=False)
    needs_body: bool = True
    seen: SeenSignatures = field(default_factory=lambda: SeenSignatures(SLACK_MAX_AGE_SECONDS))

    def plausible(self, headers: Headers) -> bool:
        timestamp = headers.get("x-slack-request-timestamp", b"").decode("latin-1")
        signature = headers.get("x-slack-signature", b"")
        return (
            bool(self.signing_secret)
            and timestamp.isdigit()
            and abs(time.time() - int(timestamp)) <= SLACK_MAX_AGE_SECONDS
            and signature.startswith(b"v0=")
        )

    def admits(self, headers: Headers, body: bytes) -> bool:
        timestamp = headers.get("x-slack-request-timestamp", b"").decode("latin-1")
        signature = headers.get("x-slack-signature", b"").decode("latin-1")
        if not self.plausible(headers):
            return False
        if not SignatureVerifier(self.signing_secret).is_valid(body, timestamp, signature):
            return False
        # A valid signature seen before is a replay (a captured request sent again within
        # its 5 minutes): Slack signs every request it sends anew.
        return self.seen.first_time(signature)


class SeenSignatures:
    """Signatures admitted in the last `seconds`, in this process. A replay that reaches
    another replica is stopped before its work runs (bot/slack/replays.py): a query here,
    before the ack, would cost every request more than the ack itself."""

    def __init__(self, seconds: float, most: int = 100_000) -> None:
        self._seconds, self._most = seconds, most
        self._seen: dict[str, float] = {}

    def first_time(self, signature: str) -> bool:
        now = time.monotonic()
        if len(self._seen) >= self._most or next(iter(self._seen.values()), now) < now:
            self._seen = {s: t for s, t in self._seen.items() if t >= now}
        if signature in self._seen:
            return False
        if len(self._seen) < self._most:
            self._seen[signature] = now + self._seconds
        return True


@dataclass(frozen=True)
class SharedSecretHeader:
    """A header that must equal a shared secret (constant-time compare). Without a
    configured secret nobody gets in — an empty secret is no secret."""

    header: str
    secret: str | None = field(repr=False)
    needs_body: bool = False

    def plausible(self, headers: Headers) -> bool:
        return self.admits(headers, b"")

    def admits(self, headers: Headers, body: bytes) -> bool:
        if not self.secret:
            return False
        return hmac.compare_digest(headers.get(self.header, b""), self.secret.encode())


@dataclass(frozen=True)
class Public:
    """No check: read-only answers that reveal nothing secret (health, metrics)."""

    needs_body: bool = False

    def plausible(self, headers: Headers) -> bool:
        return True

    def admits(self, headers: Headers, body: bytes) -> bool:
        return True


@dataclass(frozen=True)
class Door:
    path: str
    method: str
    knock: Knock
    app: ASGIApp
    max_body_bytes: int = NO_BODY
    refusal: str = "unauthorized"  # what a refused knock is told (never why in detail)


class Doors:
    """The ASGI app: routes each request to its door, or answers 404 / 405 / 413 / 401
    itself. `lifespan` gets the lifespan scope."""

    def __init__(self, doors: Sequence[Door], *, lifespan: ASGIApp) -> None:
        self.doors = {door.path: door for door in doors}
        self._lifespan = lifespan

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if scope["type"] != "http":  # no WebSocket door
            await send({"type": "websocket.close", "code": 1008})
            return
        door = self.doors.get(scope["path"])
        if door is None:
            await answer(send, 404, {"error": "not found"})
            return
        if scope["method"] != door.method:
            await answer(send, 405, {"error": f"use {door.method}"}, allow=door.method)
            return
        headers = {name.decode("latin-1").lower(): value for name, value in scope["headers"]}
        declared = headers.get("content-length", b"")
        if declared.isdigit() and int(declared) > door.max_body_bytes:
            await answer(send, 413, {"error": "payload too large"})
            return
        if not door.knock.plausible(headers):  # refused before a byte of the body is read
            await answer(send, 401, {"error": door.refusal})
            return
        try:
            async with asyncio.timeout(BODY_SECONDS):
                body = await _read_at_most(receive, door.max_body_bytes)
        except _HungUp:
            return  # nobody is left to read an answer
        except TimeoutError:
            await answer(send, 408, {"error": "the body took too long to arrive"})
            return
        if body is None:
            await answer(send, 413, {"error": "payload too large"})
            return
        if door.knock.needs_body and not door.knock.admits(headers, body):
            await answer(send, 401, {"error": door.refusal})
            return
        await door.app(scope, _replay(body, receive), send)


async def answer(send: Send, status: int, content: object, *, allow: str | None = None) -> None:
    body = json.dumps(content).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if allow:
        headers.append((b"allow", allow.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _HungUp(Exception):
    """The client went away before its body arrived."""


async def _read_at_most(receive: Receive, limit: int) -> bytes | None:
    """The body, or None as soon as it passes `limit` (the rest is never read)."""
    chunks: list[bytes] = []
    size, more = 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _HungUp
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body read once, handed to the door's app as one message; then the client's
    own messages (a disconnect) as they come."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
