"""A requests-per-minute budget for the monitor: never more than N requests in any 60 s."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable


class RequestBudget:
    """Sliding-window limiter: `acquire` waits until a request fits in the last minute."""

    def __init__(
        self,
        per_minute: int,
        *,
        window: float = 60.0,
        margin: float = 0.02,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_minute <= 0:
            raise ValueError("the budget must allow at least one request per minute")
        self.per_minute = per_minute
        # Requests reach GitLab a little after they leave (a new connection takes longer
        # than a warm one); a slightly longer window keeps that jitter from putting more
        # than the budget into one of GitLab's windows.
        self._window = window * (1 + margin)
        self._clock = clock
        self._sent: deque[float] = deque()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:  # first come, first served
            while True:
                now = self._clock()
                while self._sent and self._sent[0] <= now - self._window:
                    self._sent.popleft()
                if len(self._sent) < self.per_minute:
                    self._sent.append(now)
                    return
                await asyncio.sleep(self._sent[0] + self._window - now)

    def used_in_window(self) -> int:
        now = self._clock()
        return sum(1 for sent in self._sent if sent > now - self._window)
