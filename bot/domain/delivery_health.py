"""Whether Slack still accepts the bot's token, as the outbox sender last found it.

A revoked token or a deactivated app fails every post in every channel: that is one
problem for an operator (an error logged once, `/healthz` and a metric), not a message
per subscription.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.store.models import utcnow


@dataclass
class DeliveryHealth:
    problem: str | None = None  # Slack's error code, e.g. "invalid_auth"
    since: datetime | None = None

    def failed(self, problem: str) -> bool:
        """Record the problem; True the first time (log it then, not on every post)."""
        first = self.problem != problem
        if first:
            self.problem, self.since = problem, utcnow()
        return first

    def delivered(self) -> bool:
        """A post went through; True if that ends a problem."""
        ended = self.problem is not None
        self.problem = self.since = None
        return ended
