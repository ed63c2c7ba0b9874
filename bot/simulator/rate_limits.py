"""GitLab's rate limit for authenticated API traffic, as the simulator applies it.

GitLab (Rack::Attack) counts each user's requests in fixed windows of `period` seconds and
answers 429 `Retry later` past `limit`; its answers carry `RateLimit-*` headers saying
what is left (reference/gitlab-api.md section 5). `spend` stands for other clients of the
same user, whose requests count against the same limit.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate


@dataclass
class RateLimit:
    limit: int
    period: float = 60.0
    headers_on_success: bool = True
    _counts: dict[tuple[str, int], int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def spend(self, username: str, count: int) -> None:
        """`count` requests by another client of `username`, in the current window."""
        with self._lock:
            key = (username, self._window(time.time()))
            self._counts[key] = self._counts.get(key, 0) + count

    def check(self, username: str) -> tuple[bool, dict[str, str]]:
        """Count one request: (allowed, the headers GitLab would send with the answer)."""
        now = time.time()
        window = self._window(now)
        with self._lock:
            key = (username, window)
            observed = self._counts[key] = self._counts.get(key, 0) + 1
        reset = (window + 1) * self.period
        headers = {
            "RateLimit-Name": "throttle_authenticated_api",
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Observed": str(observed),
            "RateLimit-Remaining": str(max(0, self.limit - observed)),
            "RateLimit-Reset": str(math.ceil(reset)),
            "RateLimit-ResetTime": formatdate(reset, usegmt=True),
        }
        if observed > self.limit:
            headers["Retry-After"] = str(max(1, math.ceil(reset - now)))
            return False, headers
        return True, headers if self.headers_on_success else {}

    def _window(self, now: float) -> int:
        return int(now // self.period)
