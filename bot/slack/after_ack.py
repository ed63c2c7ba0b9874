"""Listener work that runs after Slack has its answer, with the acks first.

Bolt runs with `process_before_response=True`, so it answers Slack as soon as a listener
returns, with no polling for the ack (its other mode checks for one every 10 ms). Every
listener therefore acks, hands its slow part (GitLab, the database, the Web API) to
`AfterAck.start`, and returns.

Slack shows the person an error when an ack takes over 3 s, while a reply through the
response_url may come any time within 30 minutes. So on the one event loop the acks go
first: handed-over work starts once no new request has come in for `QUIET_SECONDS`, or
after waiting `LONGEST_WAIT_SECONDS` under a steady stream of them. Started work is kept
here so that none is garbage-collected mid-flight and shutdown can wait for it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Coroutine
from typing import Any

from bot.slack.replays import FirstUse, unless_replayed

log = logging.getLogger(__name__)

QUIET_SECONDS = 0.002
LONGEST_WAIT_SECONDS = 0.5
# Work started at once when it may: a few per turn of the loop, so that a request arriving
# meanwhile is not stuck behind all of them.
START_BATCH = 10

Work = Coroutine[Any, Any, None]


class AfterAck:
    def __init__(
        self, quiet: float = QUIET_SECONDS, longest_wait: float = LONGEST_WAIT_SECONDS
    ) -> None:
        self._quiet, self._longest_wait = quiet, longest_wait
        self._waiting: deque[tuple[float, Work]] = deque()
        self._running: set[asyncio.Task[None]] = set()
        self._starter: asyncio.Task[None] | None = None

    def start(self, work: Work) -> None:
        """Run `work` once the acks in progress are out (see the module's docstring)."""
        self._waiting.append((time.monotonic(), work))
        if self._starter is None or self._starter.done():
            self._starter = asyncio.get_running_loop().create_task(self._start_when_quiet())

    async def _start_when_quiet(self) -> None:
        while self._waiting:
            now = time.monotonic()
            quiet_for = now - self._waiting[-1][0]  # the newest waits at the right end
            oldest_waited = now - self._waiting[0][0]
            if quiet_for < self._quiet and oldest_waited < self._longest_wait:
                await asyncio.sleep(
                    min(self._quiet - quiet_for, self._longest_wait - oldest_waited)
                )
                continue
            for _ in range(min(START_BATCH, len(self._waiting))):
                self._run(self._waiting.popleft()[1])
            await asyncio.sleep(0)  # let requests that arrived meanwhile in first

    def _run(self, work: Work) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._running.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("work after a Slack ack failed", exc_info=task.exception())

    async def drain(self, grace: float) -> None:
        """Let replies in flight finish (a restart should not drop them), then cancel what
        is left after `grace` seconds."""
        if self._starter is not None:
            self._starter.cancel()
        while self._waiting:  # no more acks to favour: start what still waits
            self._run(self._waiting.popleft()[1])
        if not self._running:
            return
        _, late = await asyncio.wait(set(self._running), timeout=grace)
        for task in late:
            task.cancel()
        if late:
            log.warning("shutdown cancelled %d replies still waiting on GitLab or Slack", len(late))
            await asyncio.gather(*late, return_exceptions=True)


def later(context: dict[str, Any], work: Work) -> None:
    """Run `work` after the listener returns (and so after Slack has its ack), unless the
    request is a replay (bot/slack/replays.py)."""
    after_ack: AfterAck = context["after_ack"]
    first_use: FirstUse | None = context.get("first_use")
    after_ack.start(unless_replayed(first_use, work) if first_use is not None else work)
