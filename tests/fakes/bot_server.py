"""The real ASGI app under uvicorn on 127.0.0.1, and Slack-signed requests to it."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import uvicorn
from slack_sdk.signature import SignatureVerifier

from bot.config import Settings
from bot.server import create_app
from bot.services import FollowTiming, build_services
from bot.workers import WorkerTiming
from tests.fakes.slack import SlackStandIn

SIGNING_SECRET = "test-signing-secret"
# Loops that look for work often, and push checks soon after a push.
FAST_WORKERS = WorkerTiming(
    outbox_every=0.05,
    inbox_every=0.05,
    checks_every=0.05,
    approvals_every=0.5,
    rotations_every=0.2,
    push_check_delays=(0.05, 0.6),
)


class BotServer:
    """Runs `create_app(settings)` in its own thread and event loop, like a deployment."""

    def __init__(
        self,
        settings: Settings,
        *,
        follow: FollowTiming | None = None,
        retry: Any = None,
        timing: WorkerTiming | None = None,
        socket_mode: bool = False,
    ) -> None:
        self.settings = settings
        services = build_services(
            settings, retry=retry, follow=follow or FollowTiming(interval=0.05, timeout=5)
        )
        self.services = services
        self.app = create_app(settings, services, timing or FAST_WORKERS, socket_mode=socket_mode)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, daemon=True, name="bot-server")

    def _run(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._sock]))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> BotServer:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the bot server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)


@dataclass
class SlackUserAgent:
    """Builds and signs what Slack would send to /slack/events."""

    server_url: str
    slack: SlackStandIn
    team_id: str
    signing_secret: str = SIGNING_SECRET
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10))

    def _post(
        self,
        body: str,
        content_type: str,
        *,
        timestamp: int | None = None,
        secret: str | None = None,
        unsigned: bool = False,
    ) -> httpx.Response:
        """`secret` signs with another secret, `timestamp` at another time; `unsigned`
        sends no signature headers at all."""
        ts = str(timestamp if timestamp is not None else int(time.time()))
        signature = SignatureVerifier(secret or self.signing_secret).generate_signature(
            timestamp=ts, body=body
        )
        headers = {"Content-Type": content_type}
        if not unsigned:
            headers |= {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature}
        return self.http.post(f"{self.server_url}/slack/events", content=body, headers=headers)

    def command(
        self, text: str, *, user: str = "UALICE", channel: str = "C1", **signing: Any
    ) -> httpx.Response:
        body = urlencode(
            {
                "token": "legacy",
                "team_id": self.team_id,
                "team_domain": "test",
                "channel_id": channel,
                "channel_name": "ops",
                "user_id": user,
                "user_name": user,
                "command": "/mirror",
                "text": text,
                "api_app_id": "A1",
                "response_url": self.slack.response_url(uuid.uuid4().hex),
                "trigger_id": f"trigger-{uuid.uuid4().hex}",
            }
        )
        return self._post(body, "application/x-www-form-urlencoded", **signing)

    def click(
        self,
        action_id: str,
        value: str,
        *,
        user: str = "UALICE",
        channel: str = "C1",
        message: dict[str, Any] | None = None,
        block_id: str = "b",
        **signing: Any,
    ) -> httpx.Response:
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": {"id": user, "team_id": self.team_id},
            "team": {"id": self.team_id},
            "api_app_id": "A1",
            "token": "legacy",
            "trigger_id": f"trigger-{uuid.uuid4().hex}",
            "channel": {"id": channel},
            "container": {
                "type": "message",
                "channel_id": channel,
                "message_ts": (message or {}).get("ts", "1.1"),
                "is_ephemeral": message is None,
            },
            "response_url": self.slack.response_url(uuid.uuid4().hex),
            "actions": [
                {
                    "action_id": action_id,
                    "block_id": block_id,
                    "value": value,
                    "type": "button",
                    "action_ts": str(time.time()),
                }
            ],
        }
        if message is not None:
            payload["message"] = message
        if not channel:  # from the App Home tab
            payload.pop("channel")
            payload.pop("response_url")
            payload["container"] = {"type": "view", "view_id": "VHOME"}
        return self._post(
            urlencode({"payload": json.dumps(payload)}),
            "application/x-www-form-urlencoded",
            **signing,
        )

    def event(self, event: dict[str, Any]) -> httpx.Response:
        body = {
            "token": "legacy",
            "team_id": self.team_id,
            "api_app_id": "A1",
            "type": "event_callback",
            "event_id": f"Ev{uuid.uuid4().hex[:10]}",
            "event_time": int(time.time()),
            "event": event,
        }
        return self._post(json.dumps(body), "application/json")

    def submit(
        self,
        view: dict[str, Any],
        values: dict[str, Any],
        *,
        user: str = "UALICE",
        **signing: Any,
    ) -> httpx.Response:
        submitted = {**view, "id": view.get("id", "V1"), "hash": "h", "state": {"values": values}}
        payload = {
            "type": "view_submission",
            "team": {"id": self.team_id},
            "user": {"id": user, "team_id": self.team_id},
            "api_app_id": "A1",
            "token": "legacy",
            "trigger_id": "t",
            "view": submitted,
        }
        return self._post(
            urlencode({"payload": json.dumps(payload)}),
            "application/x-www-form-urlencoded",
            **signing,
        )
