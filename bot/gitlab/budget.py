"""How fast the bot may call GitLab with one token.

Two limits apply to every request made with the service token: our own budget (at most
`MIRRORBOT_GITLAB_REQUESTS_PER_MINUTE` in any window, shared by every replica; its ledger
lives in the database, `bot/store/request_budget.py`) and what GitLab says is left of its
limit for that token (`RateLimitPacer`): the token may be shared with other clients, and
their requests count against the same GitLab limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Protocol

from bot.gitlab.http import RateLimitHeaders

# GitLab's answer comes back after other clients of the token may have sent more: keep a
# few requests of its limit unused rather than meet its 429.
MIN_RESERVE = 2
RESERVE_SHARE = 0.05
LONGEST_PAUSE = 60.0  # GitLab's windows are a minute; a farther reset is a skewed clock


class RequestBudget(Protocol):
    """What `GitLabClient` asks before every attempt and tells after every answer."""

    async def acquire(self) -> None: ...

    def answered(self, rate_limit: RateLimitHeaders | None) -> None:
        """Called once per `acquire`, when the request got an answer or failed."""


class RateLimitPacer:
    """Stops before GitLab's limit is spent, from the `RateLimit-Remaining` and
    `RateLimit-Reset` headers of its answers.

    While a window is known, requests go out as long as what is left exceeds what is in
    flight plus a small reserve; then they wait for the reset. When nothing is known (at
    start, or once the window reset) one request goes first and the others wait for its
    answer, because the others' share of the window is unknown. A GitLab that sends no
    such headers is not paced at all."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._limit: int | None = None
        self._remaining: int | None = None
        self._reset_at = 0.0
        self._in_flight = 0
        self._silent = False  # the last answer in an unknown window had no headers
        self._queue = asyncio.Lock()  # first come, first served
        self._answer = asyncio.Event()

    async def before_request(self) -> None:
        async with self._queue:
            while (wait := self._wait()) > 0:
                answer = self._answer
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(answer.wait(), wait)
            self._in_flight += 1

    def after_answer(self, rate_limit: RateLimitHeaders | None) -> None:
        self._in_flight = max(0, self._in_flight - 1)
        if rate_limit is None:
            if not self._known():
                self._silent = True
        elif not self._known() or rate_limit.reset_at > self._reset_at + 0.5:
            self._silent = False
            self._limit = rate_limit.limit
            self._remaining = rate_limit.remaining
            self._reset_at = rate_limit.reset_at
        else:  # answers of one window arrive out of order: the lowest count is the latest
            self._remaining = min(self._remaining or 0, rate_limit.remaining)
        self._answer.set()
        self._answer = asyncio.Event()

    def not_sent(self) -> None:
        """A request let through that never went out: it tells nothing about GitLab."""
        self._in_flight = max(0, self._in_flight - 1)
        self._answer.set()
        self._answer = asyncio.Event()

    def _known(self) -> bool:
        return self._remaining is not None and self._clock() < self._reset_at

    def _wait(self) -> float:
        if not self._known():
            if self._silent or self._in_flight == 0:
                return 0.0
            return 1.0  # the probe's answer wakes the others sooner
        assert self._remaining is not None
        reserve = max(MIN_RESERVE, int((self._limit or 0) * RESERVE_SHARE))
        if self._remaining - self._in_flight - reserve > 0:
            return 0.0
        return min(LONGEST_PAUSE, self._reset_at - self._clock())
