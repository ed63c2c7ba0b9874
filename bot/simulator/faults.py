"""Fault injection for the GitLab simulator: latency, error statuses, dropped connections,
and answers that are not GitLab's (an HTML page with a 200), and requests held
unanswered until the test releases them."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Literal

FaultKind = Literal["latency", "status", "drop", "body", "hold"]


@dataclass
class Fault:
    """One rule. `times=None` applies it to every matching request. A "body" fault
    answers `status` with `body` as `content_type` (an SSO proxy's sign-in page, say)."""

    kind: FaultKind
    status: int = 500
    retry_after: float | None = None
    delay: float = 0.0
    path: str | None = None  # a regular expression searched in the request path
    method: str | None = None
    times: int | None = 1
    body: str = ""
    content_type: str = "text/html; charset=utf-8"
    hits: int = 0  # how many requests it has applied to, for tests to wait on
    released: threading.Event = field(default_factory=threading.Event)  # for "hold"

    def release(self) -> None:
        """Let the requests a "hold" fault keeps (and any later ones) be answered."""
        self.released.set()

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        return self.path is None or re.search(self.path, path) is not None


@dataclass
class FaultPlan:
    """The active rules, consumed in order; thread-safe because the server is threaded."""

    latency: float = 0.0  # added to every request, for benchmarks
    _faults: list[Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            for fault in self._faults:
                fault.release()
            self._faults.clear()
            self.latency = 0.0

    def take(self, method: str, path: str) -> list[Fault]:
        """The rules that apply to this request; each use counts against `times`."""
        taken = []
        with self._lock:
            for fault in list(self._faults):
                if not fault.matches(method, path):
                    continue
                taken.append(fault)
                fault.hits += 1
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                if fault.kind != "latency":
                    break  # one outcome per request
        return taken
