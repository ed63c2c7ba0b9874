"""Benchmark 2 — fan-out: `/mirror status --refresh` over a channel watching N projects.

Against the baseline a user would write instead: a python-gitlab loop reading each
project's push mirrors and pull mirror one request after another.

    python bench/fanout.py                 # 500 projects, 50 ms GitLab latency
    python bench/fanout.py --tiny          # 20 projects: proves it still runs (CI)
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

import gitlab
import httpx
from common import (
    SIGNING_SECRET,
    TEAM_ID,
    USER_TOKEN,
    Serve,
    SlackStandIn,
    bot_env,
    mirrorbot,
    start_gitlab,
    table,
    world_with_projects,
    write_figures,
)
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from bot.store.db import sync_url
from bot.store.migrate import upgrade_database
from bot.store.models import Subscription

CHANNEL = "CFANOUT"


def watch_all(database_url: str, projects: list) -> None:
    upgrade_database(database_url)
    engine = create_engine(sync_url(database_url))
    with Session(engine) as session, session.begin():
        session.add_all(
            Subscription(
                slack_team_id=TEAM_ID,
                channel_id=CHANNEL,
                project_id=p.id,
                project_path=p.path,
                created_by="UBENCH",
            )
            for p in projects
        )
    engine.dispose()


def signed_command(url: str, text: str, response_url: str) -> httpx.Response:
    body = urlencode(
        {
            "team_id": TEAM_ID,
            "channel_id": CHANNEL,
            "user_id": "UBENCH",
            "command": "/mirror",
            "text": text,
            "response_url": response_url,
            "trigger_id": "t",
            "api_app_id": "A1",
        }
    )
    ts = str(int(time.time()))
    signature = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=ts, body=body)
    return httpx.post(
        f"{url}/slack/events",
        content=body,
        timeout=10,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature,
        },
    )


def refresh_once(serve: Serve, slack: SlackStandIn, simulator) -> tuple[float, int]:
    name = uuid.uuid4().hex
    before = len(simulator.requests.entries)
    started = time.monotonic()
    assert (
        signed_command(serve.url, "status --refresh", slack.response_url(name)).status_code == 200
    )
    slack.wait_for(
        lambda: [c for c in slack.of("response_url") if c.path.endswith(name)], timeout=300
    )
    return time.monotonic() - started, len(simulator.requests.entries) - before


def python_gitlab_loop(url: str, projects: list) -> tuple[float, int]:
    """The baseline: one request after another, as a cron script would."""
    client = gitlab.Gitlab(url, private_token=USER_TOKEN)
    started = time.monotonic()
    requests = 0
    for project in projects:
        handle = client.projects.get(project.id, lazy=True)
        handle.remote_mirrors.list(get_all=True)
        requests += 1
        try:
            handle.pull_mirror.get()
        except gitlab.exceptions.GitlabGetError:
            pass  # 400: not a pull mirror
        requests += 1
    return time.monotonic() - started, requests


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--projects", type=int, default=500)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--figures", help="also write the figures to this JSON file")
    args = parser.parse_args()
    if args.tiny:
        args.projects, args.rounds = 20, 1
    world, projects = world_with_projects(args.projects)
    simulator = start_gitlab(world, args.latency)
    slack = SlackStandIn().start()
    with tempfile.TemporaryDirectory() as folder:
        database_url = f"sqlite:///{Path(folder) / 'bench.db'}"
        watch_all(database_url, projects)
        env = bot_env(
            database_url,
            simulator.url,
            slack,
            MIRRORBOT_MONITOR_CONCURRENCY=str(args.concurrency),
            MIRRORBOT_GITLAB_REQUESTS_PER_MINUTE="1000000",
        )
        mirrorbot(env, "users", "link", "UBENCH", "--team", TEAM_ID, stdin=USER_TOKEN)
        serve = Serve(env)
        try:
            # The monitor scans once at start; measure after it, so runs do not overlap.
            settle_until_quiet(simulator)
            timings = [refresh_once(serve, slack, simulator) for _ in range(args.rounds)]
        finally:
            serve.stop()
    ours = statistics.median(t for t, _ in timings)
    requests = timings[0][1]
    ideal = math.ceil(requests / args.concurrency) * args.latency
    baseline, baseline_requests = python_gitlab_loop(simulator.url, projects)
    simulator.stop()
    slack.stop()
    print(
        f"fan-out: {args.projects} projects, GitLab latency {args.latency * 1000:.0f} ms, "
        f"concurrency {args.concurrency}, median of {args.rounds} refreshes"
    )
    print(
        table(
            "/mirror status --refresh",
            [
                ("seconds", ours, baseline),
                ("GitLab requests", requests, baseline_requests),
                ("ideal ceil(req/conc)×latency s", ideal, "-"),
                ("× of ideal", ours / ideal, "-"),
                ("speed-up vs baseline", baseline / ours, 1.0),
            ],
        )
    )
    write_figures(
        args.figures,
        {
            "projects": args.projects,
            "seconds": ours,
            "requests": requests,
            "baseline_seconds": baseline,
            "baseline_requests": baseline_requests,
            "times_ideal": ours / ideal,
        },
    )
    return 0


def settle_until_quiet(simulator, quiet: float = 1.0, limit: float = 600) -> None:
    deadline = time.monotonic() + limit
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        count = len(simulator.requests.entries)
        if count != last:
            last, since = count, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.1)


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    sys.exit(main())
