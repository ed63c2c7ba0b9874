"""Listener work that runs after Slack has its answer.

Bolt runs with `process_before_response=True`, so it answers Slack as soon as a listener
returns, with no polling for the ack (its other mode checks for one every 10 ms). Every
listener therefore acks, hands its slow part (GitLab, the database, the Web API) to
`AfterAck.start`, and returns. The tasks are kept here so that none is garbage-collected
mid-flight and shutdown can wait for them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


class AfterAck:
    def __init__(self) -> None:
        self._running: set[asyncio.Task[None]] = set()

    def start(self, work: Coroutine[Any, Any, None]) -> None:
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
        if not self._running:
            return
        _, late = await asyncio.wait(set(self._running), timeout=grace)
        for task in late:
            task.cancel()
        if late:
            log.warning("shutdown cancelled %d replies still waiting on GitLab or Slack", len(late))
            await asyncio.gather(*late, return_exceptions=True)


def later(context: dict[str, Any], work: Coroutine[Any, Any, None]) -> None:
    """Run `work` after the listener returns (and so after Slack has its ack)."""
    after_ack: AfterAck = context["after_ack"]
    after_ack.start(work)
