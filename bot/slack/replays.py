"""A signed Slack request does its work once, whichever replica it reaches.

The door refuses a signature this process has admitted before (bot/doors.py). A captured
request replayed to another replica passes that check, so before a request's work runs
(after the ack, where the work touches the database anyway) its signature is recorded in
the database, which every replica shares; the work of a signature recorded before is
dropped. Socket Mode payloads carry no signature and need none: they come over the
app-token WebSocket.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from bot import metrics
from bot.store.seen_requests import SeenSlackRequests

log = logging.getLogger(__name__)
RETRY_AFTER = 0.2  # seconds before the one retry of a failed write


class FirstUse:
    """One request's signature, recorded once however many pieces of work it starts.
    Recorded when the first work starts, not at the ack: a write per request among a
    burst's acks cost each ack more CPU than the ack itself."""

    def __init__(self, seen: SeenSlackRequests, signature: str) -> None:
        self._seen, self._signature = seen, signature
        self._recorded: asyncio.Task[bool] | None = None

    async def admitted(self) -> bool:
        if self._recorded is None:
            self._recorded = asyncio.ensure_future(self._record(self._seen, self._signature))
        return await asyncio.shield(self._recorded)

    @staticmethod
    async def _record(seen: SeenSlackRequests, signature: str) -> bool:
        for attempt in range(2):
            try:
                return await seen.first_time(signature)
            except Exception:
                if attempt == 0:
                    await asyncio.sleep(RETRY_AFTER)  # a failover, a pool's wait running out
        # The database is down: the work most likely fails on it too and says so to the
        # person, and this replica's own memory refused its replays at the door. Dropping
        # the work would leave a real request unanswered, with no word why.
        log.warning("could not record a Slack request's signature; its work runs", exc_info=True)
        metrics.SLACK_REPLAY_CHECKS_FAILED.inc()
        return True


async def unless_replayed(first_use: FirstUse, work: Coroutine[Any, Any, None]) -> None:
    if not await first_use.admitted():
        work.close()
        log.warning("refused a replayed Slack request: its signature was used before")
        metrics.SLACK_REPLAYS_REFUSED.inc()
        return
    await work
