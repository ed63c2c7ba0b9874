"""The background loops of a running bot, started and stopped with the server.

- outbox: deliver Slack messages (every replica; each message is claimed by one);
- inbox: turn stored webhook pushes into scheduled checks;
- checks: run the checks that are due (leader only);
- monitor: scan every watched project each MIRRORBOT_POLL_INTERVAL (leader only);
- discovery: list the projects of watched groups, with each watcher's token (leader only);
- lease: keep the leader's lease renewed while it scans;
- approvals: expire stale approval requests, resolve runs a crash interrupted;
- logins: poll GitLab for pending device logins, tell each person how theirs ended;
- rotations: resume rotations nobody drives (a restart), clean up day-old ones;
- retention: delete what is older than MIRRORBOT_RETENTION_DAYS (every replica; batches);
- digest: queue each channel's daily digest once its time has come (every replica).

The leader is whichever replica holds the monitor's lease (`bot/store/leases.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from slack_sdk.web.async_client import AsyncWebClient

from bot import metrics
from bot.domain import digest, groups, inbox, monitor, retention
from bot.domain.accounts import SlackUser
from bot.domain.outbox import OutboxRetry
from bot.gitlab.client import GitLabClient
from bot.services import Services
from bot.slack.background import sweep_approvals_once
from bot.slack.device_login import advance_device_logins
from bot.slack.outbox_sender import send_due
from bot.slack.rotations import resume_rotations
from bot.store.clock import SKEW_WARNING_SECONDS, clock_skew
from bot.store.leases import MONITOR_LEASE, Lease
from bot.store.models import utcnow

log = logging.getLogger(__name__)
INBOX_BATCH = 500  # webhook events turned into scheduled checks per transaction


@dataclass(frozen=True)
class WorkerTiming:
    """How often each loop looks for work. Push checks run shortly after a push and once
    more later, because push mirrors update asynchronously."""

    outbox_every: float = 1.0
    inbox_every: float = 0.25  # small, steady passes: a big one pauses the intake
    checks_every: float = 2.0
    approvals_every: float = 15.0
    rotations_every: float = 10.0
    retention_every: float = 3600.0
    discovery_every: float = 300.0  # a group of 5,000 projects is 50 pages a pass
    digest_every: float = 20.0
    clock_every: float = 300.0
    # What time it is for the digest: tests pass a clock of their own.
    clock: Callable[[], datetime] = utcnow
    push_check_delays: tuple[float, ...] = (15.0, 120.0)
    # Device logins are polled at GitLab's own interval (5 s); this is how often the
    # worker looks for one that is due.
    logins_every: float = 1.0
    outbox_retry: OutboxRetry = field(default_factory=OutboxRetry)


class Workers:
    def __init__(
        self, services: Services, slack: AsyncWebClient, timing: WorkerTiming | None = None
    ) -> None:
        self.services = services
        self.slack = slack
        self.timing = timing or WorkerTiming()
        self.lease = Lease(
            services.engine,
            MONITOR_LEASE,
            services.replica_id,
            duration=float(services.settings.mirrorbot_leader_lease),
        )
        self._tasks: list[asyncio.Task[None]] = []

    def service_gitlab(self) -> GitLabClient | None:
        return self.services.service_gitlab()

    def start(self) -> None:
        loops: list[tuple[str, Callable[[], Awaitable[object]], float]] = [
            ("outbox", self.deliver_outbox, self.timing.outbox_every),
            ("inbox", self.process_inbox, self.timing.inbox_every),
            ("approvals", self.expire_approvals, self.timing.approvals_every),
            ("rotations", self.resume_rotations, self.timing.rotations_every),
            ("retention", self.prune, self.timing.retention_every),
            # Every replica: the outbox key per channel and day keeps it to one message.
            ("digest", self.send_digests, self.timing.digest_every),
            ("clock", self.watch_clock, self.timing.clock_every),
        ]
        if self.services.device_logins is not None:
            loops.append(("logins", self.advance_device_logins, self.timing.logins_every))
        if self.service_gitlab() is not None:
            loops += [
                ("checks", self.run_due_checks, self.timing.checks_every),
                (
                    "monitor",
                    self.scan_as_leader,
                    float(self.services.settings.mirrorbot_poll_interval),
                ),
                ("lease", self.renew_lease, self.lease.duration / 3),
                ("discovery", self.discover_groups, self.timing.discovery_every),
            ]
        else:
            log.warning("GITLAB_SERVICE_TOKEN is not set: the monitor is off, no alerts")
        self._tasks = [
            asyncio.create_task(_forever(name, work, every), name=name)
            for name, work, every in loops
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.lease.held:  # hand over now rather than when the lease runs out
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.lease.release(), timeout=2)
            metrics.MONITOR_LEADER.set(0)
        # Deliver what is already due, so a clean stop leaves the outbox as empty as it can.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.deliver_outbox(), timeout=3)

    async def deliver_outbox(self) -> int:
        return await send_due(
            self.services.sessions,
            self.slack,
            self.services.replica_id,
            health=self.services.delivery_health,
            retry=self.timing.outbox_retry,
        )

    async def advance_device_logins(self) -> int:
        assert self.services.device_logins is not None
        return await advance_device_logins(self.services.device_logins, self.slack)

    async def process_inbox(self) -> bool:
        """True while a backlog remains. Otherwise wait for the next round: under a flood of
        webhooks, a pass for every few new events cost the intake more than it saved."""
        # Checks are scheduled only if a monitor will run them: without one they would pile up.
        delays = self.timing.push_check_delays if self.service_gitlab() is not None else ()
        processed = await inbox.process_pending(
            self.services.sessions, check_delays=delays, limit=INBOX_BATCH
        )
        if processed:
            log.info("webhook inbox: %d events processed", processed)
        return processed >= INBOX_BATCH

    async def run_due_checks(self) -> int:
        gitlab = self.service_gitlab()
        if not self.lease.held:  # the leader's: its checks and scans share one budget
            return 0
        project_ids = await monitor.take_due_checks(self.services.sessions)
        if gitlab is None or not project_ids:
            return 0
        watched = await monitor.watched_projects(self.services.sessions)
        result = await monitor.check_projects(
            self.services.sessions,
            gitlab,
            [(pid, watched[pid]) for pid in project_ids if pid in watched],
            concurrency=self.services.settings.mirrorbot_monitor_concurrency,
            remind_after=self.remind_after,
        )
        return result.checked

    async def scan_as_leader(self) -> int:
        """Every interval: take or renew the lease, and scan if this replica holds it. A
        follower tries each interval too, so a dead leader is replaced within the lease's
        duration plus one interval."""
        gitlab = self.service_gitlab()
        if gitlab is None or not await self.claim_lease():
            return 0
        result = await monitor.scan(
            self.services.sessions,
            gitlab,
            concurrency=self.services.settings.mirrorbot_monitor_concurrency,
            remind_after=self.remind_after,
            recheck_every=self.services.settings.mirrorbot_recheck_every,
        )
        metrics.MONITOR_CYCLE.observe(result.seconds)
        log.info(
            "monitor scan: %d projects in %.1f s, %d problems",
            result.checked,
            result.seconds,
            len(result.problems),
        )
        return 0  # always wait the full interval before the next scan

    async def discover_groups(self) -> int:
        if not self.lease.held:
            return 0

        def client_for(who: SlackUser) -> Awaitable[GitLabClient]:
            return self.services.accounts.gitlab_for(who, self.services.budget_of)

        result = await groups.discover(self.services.sessions, client_for)
        if result.added or result.removed or result.problems:
            log.info(
                "group discovery: %d groups, %d projects added, %d removed, %d problems",
                result.groups,
                result.added,
                result.removed,
                len(result.problems),
            )
        return 0

    async def send_digests(self) -> int:
        await digest.send_due_digests(
            self.services.sessions,
            stale_after=timedelta(days=self.services.settings.mirrorbot_stale_after),
            now=self.timing.clock(),
        )
        return 0

    async def renew_lease(self) -> int:
        """A scan may outlast the lease (a large fleet, a spent budget): renew meanwhile."""
        if self.lease.held:
            await self.claim_lease()
        return 0

    async def claim_lease(self) -> bool:
        was_leader = self.lease.held
        try:
            leader = await self.lease.claim()
        except Exception as exc:
            log.warning("could not claim the monitor's lease: %s", type(exc).__name__)
            leader = self.lease.held  # still ours until it runs out by our own clock
        if leader != was_leader:
            log.info("monitor lease %s by %s", "taken" if leader else "lost", self.lease.holder)
        metrics.MONITOR_LEADER.set(1 if leader else 0)
        return leader

    async def expire_approvals(self) -> int:
        await sweep_approvals_once(self.services, self.slack)
        return 0

    async def resume_rotations(self) -> int:
        await resume_rotations(self.services, self.slack)
        return 0

    async def watch_clock(self) -> int:
        """Say so when this host's clock and the database's disagree by more than a few
        seconds: other replicas compare the claims this one writes with their clocks."""
        skew = await clock_skew(self.services.engine)
        metrics.CLOCK_SKEW.set(skew)
        if abs(skew) > SKEW_WARNING_SECONDS:
            log.warning(
                "this host's clock is %.1f s %s the database's: synchronise it (NTP); "
                "replicas more than a minute apart may take over each other's messages",
                abs(skew),
                "behind" if skew > 0 else "ahead of",
            )
        return 0

    async def prune(self) -> int:
        keep = timedelta(days=self.services.settings.mirrorbot_retention_days)
        pruned = await retention.prune(self.services.sessions, keep=keep)
        if pruned.total:
            log.info("retention: deleted %s", pruned.rows)
        return 0  # batches are already taken one after another; wait for the next round

    @property
    def remind_after(self) -> timedelta:
        return timedelta(seconds=self.services.settings.mirrorbot_remind_after)


async def _forever(name: str, work: Callable[[], Awaitable[object]], every: float) -> None:
    """Run `work` again at once while it finds work, else after `every` seconds."""
    while True:
        try:
            busy = await work()
        except Exception:
            log.exception("background loop %s failed", name)
            metrics.BACKGROUND_FAILURES.labels(name).inc()
            busy = 0
        metrics.BACKGROUND_PASSES.labels(name).inc()
        if not busy:
            await asyncio.sleep(every)
