"""The simulator's HTTP front: GitLab's `/api/v4` and `/api/graphql`, served by uvicorn
on 127.0.0.1.

An ASGI app on its own event loop (in a thread), so hundreds of concurrent requests with
simulated latency cost no thread each: the simulator must not be what a benchmark
measures. The routes themselves are plain functions (`api.py`) over the `World`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

import uvicorn

from bot.simulator.api import Request, Response, handle_request, parse_body
from bot.simulator.faults import Fault, FaultPlan
from bot.simulator.graphql_api import handle_graphql
from bot.simulator.oauth import handle_oauth
from bot.simulator.rate_limits import RateLimit
from bot.simulator.world import ApiError, World

API_PREFIX = "/api/v4"
GRAPHQL_PATH = "/api/graphql"


@dataclass(frozen=True)
class RecordedRequest:
    """What reached the simulator, for tests to assert on (never the token itself)."""

    method: str
    path: str
    username: str | None
    body: dict[str, Any]
    status: int
    at: float = field(default_factory=time.monotonic)  # when it arrived (as rate limits count)
    token_id: str | None = None  # a hash of the token: which token, never the token
    user_agent: str | None = None
    answered_at: float = field(default_factory=time.monotonic)  # recorded as it is answered


@dataclass
class RequestLog:
    entries: list[RecordedRequest] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, entry: RecordedRequest) -> None:
        with self._lock:
            self.entries.append(entry)

    def matching(self, method: str | None = None, path: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [
                e
                for e in self.entries
                if (method is None or e.method == method) and (path is None or path in e.path)
            ]

    def clear(self) -> None:
        with self._lock:
            self.entries.clear()

    def round_trips(self, since: float = 0.0, until: float = float("inf")) -> int:
        """How many GitLab round trips the requests since `since` took one after another:
        a request that arrived after another was answered waited for it (it is one round
        trip further); requests sent together count once. Needs some latency to tell."""
        with self._lock:
            entries = sorted((e for e in self.entries if since <= e.at < until), key=lambda e: e.at)
        depth: list[int] = []
        for n, entry in enumerate(entries):
            before = [depth[m] for m in range(n) if entries[m].answered_at <= entry.at]
            depth.append(1 + max(before, default=0))
        return max(depth, default=0)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # not built for this platform
        return None
    return uvloop.new_event_loop


class _DroppedConnection(Exception):
    """Raised mid-response: uvicorn then closes the connection without a complete answer."""


class GitLabSimulator:
    """A simulated GitLab on 127.0.0.1. Use as a context manager or start()/stop()."""

    def __init__(self, world: World | None = None, port: int = 0) -> None:
        self.world = world or World()
        self.faults = FaultPlan()
        self.requests = RequestLog()
        self.rate_limit: RateLimit | None = None  # GitLab's own limit per user, when set
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", port))
        self.port = self._socket.getsockname()[1]
        self.world.web_url = self.url
        # interface="asgi3": uvicorn cannot tell that a bound method is an ASGI 3 app.
        config = uvicorn.Config(
            self._app,
            interface="asgi3",
            lifespan="off",
            log_level="critical",
            access_log=False,
            timeout_keep_alive=30,
            backlog=1024,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="gitlab-sim", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        # uvloop (from uvicorn[standard]) where there is one: the simulator stands in for a
        # server with cores of its own, so its own cost per request should stay small.
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(self._server.serve(sockets=[self._socket]))

    def start(self) -> GitLabSimulator:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the GitLab simulator did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> GitLabSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def inject(self, fault: Fault) -> Fault:
        return self.faults.add(fault)

    # --- the ASGI app --------------------------------------------------------------------

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        arrived = time.monotonic()
        raw = b""
        more = True
        while more:
            message = await receive()
            raw += message.get("body", b"")
            more = message.get("more_body", False)
        method = scope["method"]
        path = scope["path"].removeprefix(API_PREFIX)
        if scope.get("raw_path"):  # keep %2F in project paths, as GitLab's router sees them
            path = scope["raw_path"].decode().split("?", 1)[0].removeprefix(API_PREFIX)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        user_agent = headers.get("user-agent")
        token = headers.get("private-token")
        if token is None and headers.get("authorization", "").startswith("Bearer "):
            token = headers["authorization"][len("Bearer ") :]
        token_id = token_fingerprint(token) if token else None
        if self.faults.latency:
            await asyncio.sleep(self.faults.latency)
        for fault in self.faults.take(method, path):
            if fault.kind == "latency":
                await asyncio.sleep(fault.delay)
            elif fault.kind == "hold":
                # Released from the test's thread: a threading.Event, polled, not a thread
                # parked per held request.
                while not fault.released.is_set():  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
            elif fault.kind == "drop":
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [(b"content-length", b"100")],
                    }
                )
                raise _DroppedConnection("fault injected: connection dropped")
            elif fault.kind == "body":
                self.requests.add(RecordedRequest(method, path, None, {}, fault.status, arrived))
                payload = fault.body.encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": fault.status,
                        "headers": [
                            (b"content-type", fault.content_type.encode()),
                            (b"content-length", str(len(payload)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": payload})
                return
            else:
                extra = {"Retry-After": str(fault.retry_after)} if fault.retry_after else {}
                body: Any = (
                    "Retry later" if fault.status == 429 else {"message": f"{fault.status} Error"}
                )
                self.requests.add(
                    RecordedRequest(
                        method, path, None, {}, fault.status, arrived, token_id, user_agent
                    )
                )
                await _send(send, Response(fault.status, body, extra))
                return
        known = self.world.tokens.get(token or "") or self.world.oauth.access_tokens.get(
            token or ""
        )
        username = self.world.users[known.user_id].username if known else None
        limit_headers: dict[str, str] = {}
        if self.rate_limit is not None and username is not None:
            allowed, limit_headers = self.rate_limit.check(username)
            if not allowed:
                self.requests.add(
                    RecordedRequest(method, path, username, {}, 429, arrived, token_id, user_agent)
                )
                await _send(send, Response(429, "Retry later", limit_headers))
                return
        try:
            body_data = parse_body(raw, headers.get("content-type", ""))
        except ApiError as exc:
            await _send(send, Response(exc.status, exc.body))
            return
        query = dict(parse_qsl(scope.get("query_string", b"").decode()))
        request = Request(
            method,
            path,
            query,
            body_data,
            token,
            base_url=f"{self.url}{API_PREFIX}",
            bearer="private-token" not in headers,
        )
        if path == GRAPHQL_PATH and method == "POST":
            response = handle_graphql(self.world, request)
        elif path.startswith("/oauth/"):
            request.body = {**_basic_client(headers.get("authorization", "")), **body_data}
            response = handle_oauth(self.world, request)
        else:
            response = handle_request(self.world, request)
        if limit_headers:
            response = Response(
                response.status, response.body, {**(response.headers or {}), **limit_headers}
            )
        self.requests.add(
            RecordedRequest(
                method, path, username, body_data, response.status, arrived, token_id, user_agent
            )
        )
        await _send(send, response)


def _basic_client(authorization: str) -> dict[str, str]:
    """RFC 6749 2.3.1: a client may send its id and secret as HTTP Basic credentials."""
    if not authorization.startswith("Basic "):
        return {}
    try:
        decoded = base64.b64decode(authorization[len("Basic ") :]).decode()
    except ValueError:
        return {}
    client_id, _, secret = decoded.partition(":")
    return {"client_id": unquote_plus(client_id), "client_secret": unquote_plus(secret)}


def token_fingerprint(token: str) -> str:
    """How the request log names a token: tests tell tokens apart without storing them."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


async def _send(send: Any, response: Response) -> None:
    if response.body is None or response.status == 204:
        payload, content_type = b"", None
    elif isinstance(response.body, str):
        payload, content_type = response.body.encode(), "text/plain"
    else:
        payload, content_type = json.dumps(response.body).encode(), "application/json"
    headers = [(b"content-length", str(len(payload)).encode())]
    if content_type:
        headers.append((b"content-type", content_type.encode()))
    headers += [
        (name.lower().encode(), value.encode()) for name, value in (response.headers or {}).items()
    ]
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
