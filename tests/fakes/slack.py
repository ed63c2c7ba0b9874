"""A Slack Web API stand-in on 127.0.0.1 that records every call and response_url post.

Answers like Slack does for the methods the bot uses (auth.test, chat.*, views.*,
conversations.*, and the upload of files.uploadV2: files.getUploadURLExternal, a POST of the
bytes to the URL it gives, files.completeUploadExternal), and can be told to rate-limit
(429 + Retry-After), fail with an API error, be down (503), be slow, or drop the connection
without an answer. Every `ts` it hands out is distinct.

Channels: a channel id nobody set up is a public channel every user of the workspace
(WORKSPACE_USERS) and the bot are in; `add_channel` makes one with chosen members, and
`archive`, `delete_channel`, `remove_bot` and `fail_posts` break one, as Slack would
answer afterwards (`is_archived`, `channel_not_found`, `not_in_channel`, …).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

TEAM_ID = "T0TEAM"
BOT_USER_ID = "UBOT"
BOT_TOKEN = "xoxb-test-bot-token"
WORKSPACE_USERS = ("UALICE", "UBOB", "UDAVE", "UADMIN", "UCAROL")
DROPPED = 0  # the status recorded for a call whose connection was dropped


@dataclass
class FakeChannel:
    id: str
    name: str
    members: set[str]
    is_private: bool = False
    is_archived: bool = False
    is_ext_shared: bool = False  # a Slack Connect channel
    deleted: bool = False
    post_error: str | None = None  # every chat.* call into it answers this error

    def visible_to_bot(self) -> bool:
        return not self.deleted and (not self.is_private or BOT_USER_ID in self.members)

    def as_slack(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "is_channel": True,
            "is_private": self.is_private,
            "is_archived": self.is_archived,
            "is_ext_shared": self.is_ext_shared,
            "is_member": BOT_USER_ID in self.members,
        }


@dataclass(frozen=True)
class SlackCall:
    method: str  # "chat.postMessage", … or "response_url"
    body: dict[str, Any]
    path: str
    token: str | None
    status: int
    error: str | None = None  # what Slack answered when it refused the call
    answer: dict[str, Any] | None = None  # what the Web API method answered
    at: float = field(default_factory=time.monotonic)  # when it arrived

    @property
    def ts(self) -> str | None:
        """The message ts Slack gave (postMessage) or kept (update)."""
        return str(self.answer["ts"]) if self.answer and "ts" in self.answer else None


@dataclass
class _Fault:
    method: str
    times: int
    status: int = 200
    error: str | None = None
    retry_after: int | None = None
    delay: float = 0.0  # answer normally, after this many seconds


class _Server(ThreadingHTTPServer):
    # The stdlib's listen backlog of 5 drops connections in a burst, and each dropped SYN
    # costs its client a 1 s retransmit; Slack's edge does not do that.
    request_queue_size = 256


@dataclass
class SlackStandIn:
    bot_token: str = BOT_TOKEN
    team_id: str = TEAM_ID
    calls: list[SlackCall] = field(default_factory=list)
    # Every call as it arrives, before any slow answer (status 0: not answered yet).
    arrivals: list[SlackCall] = field(default_factory=list)
    _faults: list[_Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _server: _Server | None = None
    memberships: dict[str, list[str]] = field(default_factory=dict)  # user -> channels
    channels: dict[str, FakeChannel] = field(default_factory=dict)
    app_token: str = "xapp-test-app-token"
    socket_url: str | None = None  # what apps.connections.open hands out
    uploads: dict[str, bytes] = field(default_factory=dict)  # file id -> uploaded bytes

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> SlackStandIn:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.stand_in = self  # type: ignore[attr-defined]
        self._server = server
        threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name="slack-standin",
        ).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> SlackStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/"

    def response_url(self, name: str = "1") -> str:
        return f"{self.base_url}/response/{name}"

    # --- faults -------------------------------------------------------------------------

    def rate_limit(self, method: str, times: int = 1, retry_after: int = 1) -> None:
        with self._lock:
            self._faults.append(_Fault(method, times, 429, "ratelimited", retry_after))

    def fail(self, method: str, error: str, times: int = 1) -> None:
        with self._lock:
            self._faults.append(_Fault(method, times, 200, error))

    def refuse(self, method: str, status: int, error: str, times: int = 1) -> None:
        """Answer `method` with an HTTP error (an expired response_url: 404 expired_url)."""
        with self._lock:
            self._faults.append(_Fault(method, times, status, error))

    def slow(self, method: str, seconds: float, times: int = 1_000_000) -> None:
        """Answer `method` as usual, but only after `seconds` (a slow Slack)."""
        with self._lock:
            self._faults.append(_Fault(method, times, delay=seconds))

    def down(self, method: str = "*", times: int = 1) -> None:
        with self._lock:
            self._faults.append(_Fault(method, times, 503))

    def drop(self, method: str = "*", times: int = 1) -> None:
        """Close the connection without an answer (recorded with status 0)."""
        with self._lock:
            self._faults.append(_Fault(method, times, DROPPED))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    # --- channels -----------------------------------------------------------------------

    def add_channel(
        self,
        channel_id: str,
        name: str,
        *,
        members: list[str],
        private: bool = False,
        bot: bool = True,
    ) -> FakeChannel:
        channel = FakeChannel(
            channel_id, name, set(members) | ({BOT_USER_ID} if bot else set()), private
        )
        with self._lock:
            self.channels[channel_id] = channel
        return channel

    def channel(self, channel_id: str) -> FakeChannel:
        with self._lock:
            if channel_id not in self.channels:
                self.channels[channel_id] = FakeChannel(
                    channel_id, channel_id.lower(), {*WORKSPACE_USERS, BOT_USER_ID}
                )
            return self.channels[channel_id]

    def archive(self, channel_id: str) -> None:
        self.channel(channel_id).is_archived = True

    def delete_channel(self, channel_id: str) -> None:
        self.channel(channel_id).deleted = True

    def remove_bot(self, channel_id: str) -> None:
        self.channel(channel_id).members.discard(BOT_USER_ID)

    def fail_posts(self, channel_id: str, error: str | None) -> None:
        """Every chat.* call into the channel answers `error` (None: stop)."""
        self.channel(channel_id).post_error = error

    def _post_error(self, channel_id: str) -> str | None:
        if channel_id[:1] in ("U", "W", "D"):  # a direct message
            return None
        channel = self.channel(channel_id)
        if channel.post_error:
            return channel.post_error
        if not channel.visible_to_bot():
            return "channel_not_found"
        if channel.is_archived:
            return "is_archived"
        return None  # a public channel the bot left still takes posts: chat:write.public

    def _take_fault(self, method: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.method in (method, "*"):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    # --- assertions ---------------------------------------------------------------------

    def of(self, method: str) -> list[SlackCall]:
        with self._lock:
            return [c for c in self.calls if c.method == method and c.status == 200]

    def refused(self, method: str) -> list[SlackCall]:
        with self._lock:
            return [c for c in self.calls if c.method == method and c.status != 200]

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.02)
        raise AssertionError("the Slack stand-in did not see the expected call in time")

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()

    def _record(self, call: SlackCall) -> None:
        with self._lock:
            self.calls.append(call)

    # --- answers ------------------------------------------------------------------------

    def answer(self, method: str, body: dict[str, Any], token: str | None) -> dict[str, Any]:
        if method == "apps.connections.open":
            if token != self.app_token or self.socket_url is None:
                return {"ok": False, "error": "invalid_auth"}
            return {"ok": True, "url": self.socket_url}
        if method != "response_url" and token != self.bot_token:
            return {"ok": False, "error": "invalid_auth"}
        ts = f"{int(time.time())}.{next(self._ts):06d}"
        if method in ("chat.postMessage", "chat.update", "chat.postEphemeral"):
            error = self._post_error(str(body.get("channel")))
            if error:
                return {"ok": False, "error": error}
        if method == "conversations.open":
            users = str(body.get("users") or "")
            if not users or "," in users:
                return {"ok": False, "error": "invalid_users"}
            return {"ok": True, "channel": {"id": f"D{users}"}}
        if method.startswith("conversations."):
            return self._conversations(method, body)
        if method == "files.getUploadURLExternal":
            if not body.get("filename") or not str(body.get("length") or "").isdigit():
                return {"ok": False, "error": "invalid_arguments"}
            file_id = f"F{next(self._ts):08d}"
            return {
                "ok": True,
                "file_id": file_id,
                "upload_url": f"{self.base_url}/upload/v1/{file_id}",
            }
        if method == "files.completeUploadExternal":
            files = json.loads(str(body.get("files") or "[]"))
            with self._lock:
                missing = [f["id"] for f in files if f.get("id") not in self.uploads]
            if not files or missing:
                return {"ok": False, "error": "file_not_found"}
            return {"ok": True, "files": [{"id": f["id"], "title": f.get("title")} for f in files]}
        if method == "auth.test":
            return {
                "ok": True,
                "team_id": self.team_id,
                "team": "Test Team",
                "user_id": BOT_USER_ID,
                "bot_id": "BBOT",
                "url": "https://test.slack.com/",
            }
        if method == "chat.postMessage":
            return {
                "ok": True,
                "channel": body.get("channel"),
                "ts": ts,
                "message": {"text": body.get("text"), "ts": ts},
            }
        if method == "users.conversations":
            user = str(body.get("user"))
            channels = list(self.memberships.get(user, []))
            with self._lock:
                channels += [
                    c.id
                    for c in self.channels.values()
                    if user in c.members and not c.deleted and c.id not in channels
                ]
            return {
                "ok": True,
                "channels": [{"id": c} for c in channels],
                "response_metadata": {"next_cursor": ""},
            }
        if method == "chat.update":
            return {"ok": True, "channel": body.get("channel"), "ts": body.get("ts")}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": ts}
        if method.startswith("views."):
            view = body.get("view")
            if isinstance(view, str):
                view = json.loads(view)
            return {"ok": True, "view": {**(view or {}), "id": f"V{next(self._ts)}", "hash": "h"}}
        return {"ok": True}

    def _conversations(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        if method == "conversations.list":
            with self._lock:
                listed = [
                    c.as_slack()
                    for c in self.channels.values()
                    if c.visible_to_bot()
                    and not (c.is_archived and str(body.get("exclude_archived")) in ("1", "true"))
                ]
            return _page(listed, "channels", body)
        channel_id = str(body.get("channel"))
        if channel_id.startswith("D"):
            if method == "conversations.info":
                return {"ok": True, "channel": {"id": channel_id, "is_im": True}}
            return {"ok": False, "error": "method_not_supported_for_channel_type"}
        channel = self.channel(channel_id)
        if not channel.visible_to_bot():
            return {"ok": False, "error": "channel_not_found"}
        if method == "conversations.info":
            return {"ok": True, "channel": channel.as_slack()}
        if method == "conversations.members":
            return _page(sorted(channel.members), "members", body)
        return {"ok": False, "error": "unknown_method"}


def _page(items: list[Any], key: str, body: dict[str, Any]) -> dict[str, Any]:
    """Cursor pagination as Slack does it (the cursor is opaque; here an offset)."""
    start = int(body.get("cursor") or 0)
    size = int(body.get("limit") or 100)
    following = str(start + size) if start + size < len(items) else ""
    return {
        "ok": True,
        key: items[start : start + size],
        "response_metadata": {"next_cursor": following},
    }


class _Handler(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        # Some Web API methods (users.conversations, …) go out as GET with query parameters.
        self.do_POST()

    def do_POST(self) -> None:
        stand_in: SlackStandIn = self.server.stand_in  # type: ignore[attr-defined]
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parts = urlsplit(self.path)
        path = parts.path
        if path.startswith("/upload/v1/"):  # files.getUploadURLExternal's upload URL
            file_id = path.rsplit("/", 1)[-1]
            with stand_in._lock:
                stand_in.uploads[file_id] = raw
            stand_in._record(SlackCall("file_upload", {"file_id": file_id}, path, None, 200))
            self._reply(200, f"OK - {len(raw)}")
            return
        body = {
            **dict(parse_qsl(parts.query)),
            **_parse(raw, self.headers.get("Content-Type") or ""),
        }
        method = "response_url" if path.startswith("/response/") else path.rsplit("/", 1)[-1]
        auth = self.headers.get("Authorization") or ""
        token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else body.get("token")
        with stand_in._lock:
            stand_in.arrivals.append(SlackCall(method, body, path, token, 0))
        fault = stand_in._take_fault(method)
        if fault and fault.delay:
            time.sleep(fault.delay)
            fault = None
        # Recorded before the answer goes out, so whoever sees the answer sees the call.
        if fault and fault.status == DROPPED:
            stand_in._record(SlackCall(method, body, path, token, DROPPED))
            self.close_connection = True
            return
        if fault and fault.status != 200:
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after else {}
            stand_in._record(
                SlackCall(
                    method,
                    body,
                    path,
                    token,
                    fault.status,
                    error=fault.error or "service_unavailable",
                )
            )
            self._reply(
                fault.status, {"ok": False, "error": fault.error or "service_unavailable"}, headers
            )
        elif fault:
            stand_in._record(
                SlackCall(method, body, path, token, 400, error=fault.error)
            )  # not delivered
            self._reply(200, {"ok": False, "error": fault.error})
        elif method == "response_url":
            stand_in._record(SlackCall(method, body, path, token, 200))
            self._reply(200, "ok")
        else:
            answer = stand_in.answer(method, body, token)
            stand_in._record(
                SlackCall(
                    method,
                    body,
                    path,
                    token,
                    200 if answer.get("ok") else 400,
                    error=answer.get("error"),
                    answer=answer,
                )
            )
            self._reply(200, answer)

    def _reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        payload = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header(
            "Content-Type", "text/plain" if isinstance(body, str) else "application/json"
        )
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def _parse(raw: bytes, content_type: str) -> dict[str, Any]:
    if not raw:
        return {}
    if "json" in content_type:
        value = json.loads(raw)
        return value if isinstance(value, dict) else {}
    body: dict[str, Any] = dict(parse_qsl(raw.decode(), keep_blank_values=True))
    for key in ("blocks", "view", "attachments"):
        if isinstance(body.get(key), str):
            try:
                body[key] = json.loads(body[key])
            except ValueError:
                pass
    return body
