"""The simulator's HTTP front: a threaded stdlib server on 127.0.0.1 serving `/api/v4`."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from bot.simulator.api import Request, Response, handle_request, parse_body
from bot.simulator.faults import Fault, FaultPlan
from bot.simulator.world import ApiError, World

API_PREFIX = "/api/v4"


@dataclass(frozen=True)
class RecordedRequest:
    """What reached the simulator, for tests to assert on (never the token itself)."""

    method: str
    path: str
    username: str | None
    body: dict[str, Any]
    status: int


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


class GitLabSimulator:
    """A simulated GitLab on 127.0.0.1. Use as a context manager or start()/stop()."""

    def __init__(self, world: World | None = None, port: int = 0) -> None:
        self.world = world or World()
        self.faults = FaultPlan()
        self.requests = RequestLog()
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.simulator = self
        self.world.web_url = self.url
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="gitlab-sim",
            daemon=True,
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> GitLabSimulator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> GitLabSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def inject(self, fault: Fault) -> Fault:
        return self.faults.add(fault)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    simulator: GitLabSimulator


class _Handler(BaseHTTPRequestHandler):
    # Without TCP_NODELAY every response stalls ~40 ms on delayed ACKs.
    disable_nagle_algorithm = True
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: tests assert on the request log instead

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        simulator = self.server.simulator
        parts = urlsplit(self.path)
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if simulator.faults.latency:
            time.sleep(simulator.faults.latency)
        path = parts.path.removeprefix(API_PREFIX)
        for fault in simulator.faults.take(self.command, path):
            if fault.kind == "latency":
                time.sleep(fault.delay)
            elif fault.kind == "drop":
                self.close_connection = True
                return  # no response at all: the client sees the connection close
            else:
                headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after else {}
                body: Any = (
                    "Retry later"
                    if fault.status == 429
                    else {"message": "500 Internal Server Error"}
                )
                self._send(Response(fault.status, body, headers))
                simulator.requests.add(RecordedRequest(self.command, path, None, {}, fault.status))
                return
        token = self.headers.get("PRIVATE-TOKEN")
        if token is None and (self.headers.get("Authorization") or "").startswith("Bearer "):
            token = self.headers["Authorization"][len("Bearer ") :]
        try:
            body_data = parse_body(raw, self.headers.get("Content-Type") or "")
        except ApiError as exc:
            self._send(Response(exc.status, exc.body))
            return
        host, port = self.server.server_address[:2]
        request = Request(
            self.command,
            path,
            dict(parse_qsl(parts.query)),
            body_data,
            token,
            base_url=f"http://{host!s}:{port}{API_PREFIX}",
        )
        response = handle_request(simulator.world, request)
        user = simulator.world.tokens.get(token or "")
        username = simulator.world.users[user.user_id].username if user else None
        simulator.requests.add(
            RecordedRequest(self.command, path, username, body_data, response.status)
        )
        self._send(response)

    def _send(self, response: Response) -> None:
        if response.body is None or response.status == 204:
            payload = b""
            content_type = None
        elif isinstance(response.body, str):
            payload = response.body.encode()
            content_type = "text/plain"
        else:
            payload = json.dumps(response.body).encode()
            content_type = "application/json"
        self.send_response(response.status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in (response.headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload:
            self.wfile.write(payload)
