"""The process-wide connection pool to GitLab's API, on aiohttp.

aiohttp directly, not behind httpx: httpx's own pool slows down sharply past ~10
concurrent requests (the monitor and `status --refresh` fan out to dozens), and even as
a front for aiohttp its request, URL and response objects doubled the CPU of each call.
The failures are mapped exactly, because what is retried depends on them: a refused
connection never reached GitLab, a dropped one might have.
"""

from __future__ import annotations

import json as jsonlib
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
from multidict import CIMultiDictProxy

POOL_WAIT = 60.0  # seconds a request may wait for a free connection, then connect


class Refused(Exception):
    """Nothing accepted the connection: the request certainly never left."""


class TimedOut(Exception):
    """Connecting or waiting for the answer took too long."""


class Dropped(Exception):
    """The connection broke mid-exchange: GitLab may or may not have acted."""


@dataclass(frozen=True)
class RateLimitHeaders:
    """What GitLab says is left of the token's rate limit (`RateLimit-*` headers, sent on
    most answers and on its 429s; some APIs send none)."""

    remaining: int
    reset_at: float  # unix time, on this host's clock
    limit: int | None = None


@dataclass(frozen=True)
class Answer:
    status_code: int
    headers: CIMultiDictProxy[str]
    content: bytes

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The decoded body; `ValueError` if it is not JSON."""
        return jsonlib.loads(self.content)

    @property
    def rate_limit(self) -> RateLimitHeaders | None:
        remaining = self.headers.get("RateLimit-Remaining")
        reset = self.headers.get("RateLimit-Reset")
        if remaining is None or reset is None:
            return None
        try:
            limit = self.headers.get("RateLimit-Limit")
            reset_at = float(reset)
            if date := self.headers.get("Date"):
                # GitLab's clock may not be ours: count from when it says it answered.
                reset_at = time.time() + reset_at - parsedate_to_datetime(date).timestamp()
            return RateLimitHeaders(max(0, int(remaining)), reset_at, int(limit) if limit else None)
        except (TypeError, ValueError):  # a proxy's idea of these headers: ignore it
            return None


class GitLabHTTP:
    """Pooled connections to `<gitlab_url>/api/v4`, shared by every `GitLabClient`."""

    def __init__(
        self, gitlab_url: str, *, timeout: float, max_connections: int, user_agent: str
    ) -> None:
        self.root_url = gitlab_url.rstrip("/")
        self.base_url = f"{self.root_url}/api/v4"
        self._user_agent = user_agent
        self._max_connections = max_connections
        # A burst queues for the pool (500 commands at 1 s latency wait several seconds
        # for a connection): that wait is bounded on its own (`connect` covers the wait
        # and the connecting), so it never looks like a dead GitLab and sends retries
        # into the queue; `sock_connect` bounds the TCP connect itself.
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=POOL_WAIT, sock_connect=min(timeout, 5.0), sock_read=timeout
        )
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Created on first use, inside the event loop that will use it.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections),
                headers={"User-Agent": self._user_agent},
                timeout=self._timeout,
            )
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str],
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
        form: dict[str, str] | None = None,
        outside_api: bool = False,
    ) -> Answer:
        """`method` on `base_url + path` (`root_url + path` if `outside_api`, as GitLab's
        `/oauth/…` endpoints are); raises `Refused`, `TimedOut` or `Dropped`."""
        try:
            async with self._client().request(
                method,
                (self.root_url if outside_api else self.base_url) + path,
                headers=headers,
                params=params,
                json=json,
                data=form,
                allow_redirects=False,
            ) as response:
                content = await response.read()
                return Answer(response.status, response.headers, content)
        except aiohttp.ClientConnectorError as exc:
            raise Refused(str(exc)) from exc
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:  # connect or read
            raise TimedOut(str(exc) or "timed out") from exc
        except (
            # Every other broken connection (disconnected, reset, OS errors), and answers
            # that arrived broken.
            aiohttp.ClientConnectionError,
            aiohttp.ClientPayloadError,
            aiohttp.ClientResponseError,
        ) as exc:
            raise Dropped(str(exc)) from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
