"""Two replicas as two `mirrorbot serve` processes on one PostgreSQL: one leader scans, one
GitLab budget for the service token, a killed leader replaced in bounded time, each alert
posted once even behind a slow Slack.

Requests are counted from the simulator's log, per token (a hash of it) and per replica
(each replica's User-Agent names its process)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select, update
from sqlalchemy.orm import Session

from bot.domain.accounts import Accounts, SlackUser
from bot.gitlab.client import create_http_client
from bot.simulator import GitLabSimulator, Timing, World
from bot.simulator.server import RecordedRequest, token_fingerprint
from bot.simulator.world import SimProject
from bot.store.crypto import TokenCipher, generate_key
from bot.store.db import create_engine as create_async_engine
from bot.store.db import session_factory, sync_url
from bot.store.migrate import upgrade_database
from bot.store.models import Lease, OutboxMessage, ScheduledCheck, Subscription
from tests.fakes.bot_server import SIGNING_SECRET, SlackUserAgent
from tests.fakes.serve_process import ServeProcess, serve_env
from tests.fakes.slack import BOT_TOKEN, TEAM_ID, SlackStandIn

# Longer than the bounded waits of any test here (start-up included), so that a failure
# says what it waited for instead of being cut off by pytest's default of 120 s.
# One at a time with the suite's other process tests (pyproject.toml, addopts).
pytestmark = [pytest.mark.postgres, pytest.mark.timeout(300), pytest.mark.xdist_group("processes")]

SERVICE_TOKEN = "glpat-fleet-service-00001"
WEBHOOK_SECRET = "fleet-webhook-secret"
CHANNEL = "CFLEET"
PROJECTS = 20  # two requests each per scan: push mirrors and pull mirror
POLL_INTERVAL = 1
LEASE = 3
# Two processes, the simulator and the Slack stand-in share 2 busy cores: a replica may
# get the CPU a little late. Bounds add this much on top of what the design promises.
SCHEDULING_SLACK = 2.0
AUTH_ERROR = "fatal: Authentication failed for 'https://mirror.example.org/p.git/'"


class Fleet:
    """The simulated GitLab with PROJECTS watched projects, the Slack stand-in, the
    database, and the replicas started on them."""

    def __init__(self, tmp_path: Path, database_url: str, slack: SlackStandIn) -> None:
        self.world = World(
            Timing(
                update_seconds=0.05,
                retry_seconds=0.05,
                sync_backoff_seconds=0,
                protected_sync_backoff_seconds=0,
                pull_interval_seconds=0,
            )
        )
        service = self.world.add_user("monitor")
        self.world.add_token(service, SERVICE_TOKEN)
        self.projects: list[SimProject] = []
        for n in range(PROJECTS):
            project = self.world.add_project(f"fleet/p-{n:02d}", {service: 40})
            mirror = self.world.add_push_mirror(
                project, f"https://mirror.example.org/p{n}.git", enabled=True
            )
            self.world.succeed_at(mirror, self.world.clock())
            self.projects.append(project)
        self.gitlab = GitLabSimulator(self.world).start()
        self.slack = slack
        self.database_url = database_url
        self.tmp_path = tmp_path
        self.key = generate_key()
        self.replicas: list[ServeProcess] = []
        upgrade_database(database_url)
        engine = create_engine(sync_url(database_url))
        with Session(engine) as session, session.begin():
            session.add_all(
                Subscription(
                    slack_team_id=TEAM_ID,
                    channel_id=CHANNEL,
                    project_id=p.id,
                    project_path=p.path,
                    created_by="UOPS",
                )
                for p in self.projects
            )
        engine.dispose()

    def link(self, user_id: str) -> None:
        """Link a Slack user to a GitLab user of its own (`status --refresh` needs one)."""
        person = self.world.add_user(user_id.lower())
        token = f"glpat-{user_id.lower()}-person-token-01"
        self.world.add_token(person, token)

        async def link() -> None:
            engine = create_async_engine(self.database_url)
            http = create_http_client(self.gitlab.url)
            try:
                accounts = Accounts(session_factory(engine), TokenCipher([self.key]), http)
                await accounts.link(SlackUser(TEAM_ID, user_id), token, linked_by="test")
            finally:
                await http.aclose()
                await engine.dispose()

        asyncio.run(link())

    def start(self, count: int, **settings: str) -> list[ServeProcess]:
        env = serve_env(
            DATABASE_URL=self.database_url,
            MIRRORBOT_SECRET_KEY=self.key,
            GITLAB_URL=self.gitlab.url,
            GITLAB_SERVICE_TOKEN=SERVICE_TOKEN,
            GITLAB_WEBHOOK_SECRET=WEBHOOK_SECRET,
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL=self.slack.api_url,
            MIRRORBOT_POLL_INTERVAL=str(POLL_INTERVAL),
            MIRRORBOT_LEADER_LEASE=str(LEASE),
            MIRRORBOT_LOG_LEVEL="INFO",
            **settings,
        )
        started = [
            ServeProcess(env, self.tmp_path / f"replica-{len(self.replicas) + n}.log")
            for n in range(count)
        ]
        self.replicas += started
        return [replica.wait_healthy() for replica in started]

    def service_requests(self, since: float = 0.0) -> list[RecordedRequest]:
        token = token_fingerprint(SERVICE_TOKEN)
        return [r for r in self.gitlab.requests.matching() if r.token_id == token and r.at >= since]

    def by(self, replica: ServeProcess, since: float = 0.0) -> list[RecordedRequest]:
        return [r for r in self.service_requests(since) if replica.made(r)]

    def wait(self, what: str, predicate: Callable[[], Any], timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if value := predicate():
                return value
            time.sleep(0.05)
        logs = "\n".join(f"--- {r.log_path.name}\n{r.output()}" for r in self.replicas)
        raise AssertionError(f"timed out waiting for {what}\n{logs}")

    def outbox(self) -> list[tuple[str, str]]:
        engine = create_engine(sync_url(self.database_url))
        try:
            with Session(engine) as session:
                rows = session.execute(select(OutboxMessage.method, OutboxMessage.status)).all()
        finally:
            engine.dispose()
        return [(method, status) for method, status in rows]

    def due_checks(self) -> list[float]:
        """When each scheduled check is due (unix time)."""
        engine = create_engine(sync_url(self.database_url))
        try:
            with Session(engine) as session:
                due = session.scalars(select(ScheduledCheck.due_at)).all()
        finally:
            engine.dispose()
        return [moment.timestamp() for moment in due]

    def set_monitor_lease(self, holder: str, expires_at: float) -> None:
        engine = create_engine(sync_url(self.database_url))
        try:
            with Session(engine) as session, session.begin():
                if session.get(Lease, "monitor") is None:
                    session.add(Lease(name="monitor", holder=holder, expires_at=expires_at))
                else:
                    session.execute(
                        update(Lease)
                        .where(Lease.name == "monitor")
                        .values(holder=holder, expires_at=expires_at)
                    )
        finally:
            engine.dispose()

    def close(self) -> None:
        for replica in self.replicas:
            replica.stop()
        self.gitlab.stop()


@pytest.fixture
def fleet(tmp_path: Path, postgres_url: str, slack: SlackStandIn) -> Iterator[Fleet]:
    fleet = Fleet(tmp_path, postgres_url, slack)
    yield fleet
    fleet.close()


def most_in_any_window(stamps: list[float], window: float) -> int:
    stamps = sorted(stamps)
    worst, start = 0, 0
    for end, stamp in enumerate(stamps):
        while stamps[start] <= stamp - window:
            start += 1
        worst = max(worst, end - start + 1)
    return worst


def alert_arrivals(slack: SlackStandIn) -> list[dict[str, Any]]:
    return [
        c.body
        for c in list(slack.arrivals)
        if c.method == "chat.postMessage" and "Mirror failing" in c.body.get("text", "")
    ]


def test_only_the_leader_scans_and_a_killed_leader_is_replaced_within_interval_plus_lease(
    fleet: Fleet,
):
    both = fleet.start(2)
    both_up = time.monotonic()
    scan = 2 * PROJECTS
    # Evidence first: four scans' worth of requests since both replicas serve.
    fleet.wait("four scans", lambda: len(fleet.service_requests(both_up)) >= 4 * scan, 30)
    scanners = [r for r in both if fleet.by(r, both_up)]
    assert len(scanners) == 1, "both replicas scanned: leadership is not exclusive"
    [leader] = scanners
    [follower] = [r for r in both if r is not leader]

    leader.kill()
    killed = time.monotonic()
    first = fleet.wait("the follower's first scan", lambda: fleet.by(follower, killed), 30)[0]
    assert first.at - killed <= POLL_INTERVAL + LEASE + SCHEDULING_SLACK
    # And it goes on scanning as the leader.
    fleet.wait("two more scans", lambda: len(fleet.by(follower, killed)) >= 2 * scan, 30)


def test_a_leader_that_stops_renewing_is_replaced_and_stands_down_when_it_comes_back(
    fleet: Fleet,
):
    both = fleet.start(2)
    scan = 2 * PROJECTS
    fleet.wait("two scans", lambda: len(fleet.service_requests()) >= 2 * scan, 30)
    [leader] = [r for r in both if fleet.by(r)]
    [follower] = [r for r in both if r is not leader]
    leader.pause()  # it can renew nothing, as if its database connection were gone
    paused = time.monotonic()
    fleet.wait("the follower's scans", lambda: len(fleet.by(follower, paused)) >= scan, 30)
    leader.resume()
    resumed = time.monotonic()
    # Three more scans by the new leader: the old one, back, has had three intervals to
    # scan again, and must not (at most the scan the pause interrupted finishes).
    fleet.wait("three more scans", lambda: len(fleet.by(follower, resumed)) >= 3 * scan, 30)
    assert len(fleet.by(leader, resumed)) < scan


def test_two_replicas_spend_one_budget_of_30_requests_in_any_60_seconds(fleet: Fleet):
    """20 projects need 40 requests a scan; both replicas poll every second and the
    follower runs `status --refresh` too: still at most 30 requests in any 60 s."""
    fleet.link("UALICE")
    both = fleet.start(2, MIRRORBOT_GITLAB_REQUESTS_PER_MINUTE="30")
    fleet.wait("the first window's budget spent", lambda: len(fleet.service_requests()) >= 30, 30)
    [leader] = [r for r in both if fleet.by(r)]
    [follower] = [r for r in both if r is not leader]
    refresh_sent = time.monotonic()
    agent = SlackUserAgent(follower.url, fleet.slack, TEAM_ID)
    assert agent.command("status --refresh", channel=CHANNEL).status_code == 200
    # The budget frees up a minute after the first requests; wait until both replicas
    # have drawn on it again (the follower's refresh among them).
    fleet.wait(
        "requests of the second window, some the follower's",
        lambda: fleet.by(follower) and len(fleet.service_requests()) >= 45,
        100,
    )
    stamps = [r.at for r in fleet.service_requests()]
    assert most_in_any_window(stamps, 60.0) <= 30
    # Only the leader scanned; the follower's requests are its refresh.
    assert all(r.at >= refresh_sent for r in fleet.by(follower))


def test_a_slack_that_answers_in_15_seconds_still_gets_each_alert_once(fleet: Fleet):
    failing = fleet.projects[:3]
    for project in failing:
        fleet.world.fail_now(next(iter(project.push_mirrors.values())), AUTH_ERROR)
    fleet.slack.slow("chat.postMessage", 15)
    fleet.start(2)

    def delivered() -> bool:
        posted = alert_arrivals(fleet.slack)
        assert len(posted) <= len(failing), f"an alert was posted twice: {len(posted)} posts"
        alerts = [status for method, status in fleet.outbox() if method == "alert"]
        return len(alerts) == len(failing) and set(alerts) == {"sent"}

    # Every alert row is sent: no replica will post them again.
    fleet.wait("every alert delivered", delivered, 90)
    posted = alert_arrivals(fleet.slack)
    texts = [json.dumps(body) for body in posted]
    assert sorted(next(p.path for p in failing if p.path in t) for t in texts) == sorted(
        p.path for p in failing
    )


def test_webhooks_to_both_replicas_post_each_alert_and_each_recovery_once(fleet: Fleet):
    both = fleet.start(2)
    project = fleet.projects[0]
    mirror = next(iter(project.push_mirrors.values()))
    fleet.world.fail_now(mirror, AUTH_ERROR)
    for _ in range(3):  # both receive every webhook, as behind a balancer
        event_uuid = str(uuid.uuid4())
        for replica in both:
            assert send_push(replica, project, event_uuid).status_code == 200
    fleet.wait("the alert", lambda: alert_arrivals(fleet.slack), 30)
    alerted = time.monotonic()
    # Evidence that the pipeline went on: two more full scans after the alert.
    fleet.wait("two scans", lambda: len(fleet.service_requests(alerted)) >= 2 * 2 * PROJECTS, 30)
    assert len(alert_arrivals(fleet.slack)) == 1

    fleet.world.set_outcome(mirror, None)
    fleet.world.push(project)

    def recoveries() -> list[Any]:
        return [
            c
            for c in list(fleet.slack.arrivals)
            if c.method == "chat.postMessage" and "Recovered" in c.body.get("text", "")
        ]

    fleet.wait("the recovery", recoveries, 30)
    recovered = time.monotonic()
    fleet.wait("two scans", lambda: len(fleet.service_requests(recovered)) >= 2 * 2 * PROJECTS, 30)
    assert len(recoveries()) == 1
    assert len(alert_arrivals(fleet.slack)) == 1


def test_checks_a_push_schedules_wait_for_the_leader(fleet: Fleet):
    """While another process holds the lease, neither replica runs the due checks (nor
    scans); once it is free, the new leader runs them."""
    fleet.set_monitor_lease("another-process", time.time() + 3600)
    both = fleet.start(2)
    project = fleet.projects[0]
    assert send_push(both[0], project, str(uuid.uuid4())).status_code == 200
    due = fleet.wait("the push's scheduled checks", fleet.due_checks, 30)
    # Past the first check's due time by more than two rounds of each checks loop (2 s).
    first_due = min(due)
    fleet.wait("the first check to be due", lambda: time.time() > first_due + 5, 30)
    assert fleet.service_requests() == []
    assert min(fleet.due_checks()) == first_due  # still waiting for a leader

    fleet.set_monitor_lease("another-process", 0.0)  # it went away
    fleet.wait(
        "the due check taken by the new leader",
        lambda: all(moment > first_due for moment in fleet.due_checks()),
        30,
    )
    readers = [r for r in both if fleet.by(r)]
    assert len(readers) == 1


def send_push(replica: ServeProcess, project: SimProject, event_uuid: str) -> httpx.Response:
    body = {
        "object_kind": "push",
        "event_name": "push",
        "ref": "refs/heads/main",
        "project_id": project.id,
        "project": {"id": project.id, "path_with_namespace": project.path},
        "commits": [],
        "total_commits_count": 1,
    }
    headers = {
        "Content-Type": "application/json",
        "X-Gitlab-Event": "Push Hook",
        "X-Gitlab-Token": WEBHOOK_SECRET,
        "X-Gitlab-Event-UUID": event_uuid,
        "Idempotency-Key": str(uuid.uuid4()),
    }
    return httpx.post(f"{replica.url}/gitlab/webhook", content=json.dumps(body), headers=headers)
