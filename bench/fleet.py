"""Benchmark — a group at fleet size: discovery of 5,000 projects, 300 of them mirrored.

Measures the discovery pass of a group subscription (`GET /groups/:id/projects`, 100 a
page, paced by the shared budget) and the per-project scan of the projects it finds, as
the monitor makes it today (push mirrors and pull mirror of every project): requests per
scan, measured, and the scan's time at the budget. The scan itself is run without the
budget to keep the run short; its time at the budget is requests / budget. Exit status
non-zero unless discovery found every project within one window of the budget and the
scan read every project.

    python bench/fleet.py                # 5,000 projects, 300 mirrored, 2,000 requests/min
    python bench/fleet.py --tiny         # 250 projects, 15 mirrored (CI)
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from common import SERVICE_TOKEN, start_gitlab, table, write_figures
from sqlalchemy import func, select

from bot.domain import groups
from bot.domain.accounts import SlackUser
from bot.domain.monitor import check_projects
from bot.gitlab.client import GitLabClient, create_http_client
from bot.simulator.world import Timing, World
from bot.store.db import create_engine, session_factory, transaction
from bot.store.migrate import upgrade_database
from bot.store.models import GroupSubscription, Subscription
from bot.store.request_budget import SharedRequestBudget


def fleet_world(projects: int, mirrored: int) -> World:
    world = World(Timing(update_seconds=0.2, sync_backoff_seconds=0))
    service = world.add_user("monitor")
    world.add_token(service, SERVICE_TOKEN)
    world.add_group("fleet", {service: 40})
    every = max(1, projects // max(1, mirrored))
    for n in range(projects):
        sub = f"team-{n % 25:02d}"
        project = world.add_project(f"fleet/{sub}/project-{n:05d}")
        if n % every == 0 and n // every < mirrored:
            mirror = world.add_push_mirror(
                project, f"https://bot:secret@mirror.example.org/p{n}.git", enabled=True
            )
            world.succeed_at(mirror, world.clock())
    world.add_group("fleet/team-00")
    return world


async def run(args: argparse.Namespace) -> dict[str, float]:
    world = fleet_world(args.projects, args.mirrored)
    simulator = start_gitlab(world, args.latency)
    database_url = f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}"
    upgrade_database(database_url)
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    group_id = next(g.id for g in world.groups.values() if g.path == "fleet")
    async with transaction(sessions) as session:
        session.add(
            GroupSubscription(
                slack_team_id="T",
                channel_id="C",
                group_id=group_id,
                group_path="fleet",
                created_by="U",
            )
        )
    http = create_http_client(simulator.url)
    budget = SharedRequestBudget(engine, SERVICE_TOKEN, args.budget)
    paced = GitLabClient(http, SERVICE_TOKEN, budget=budget)

    async def client_for(who: SlackUser) -> GitLabClient:
        return paced

    simulator.requests.clear()
    started = time.monotonic()
    found = await groups.discover(sessions, client_for)
    discovery_seconds = time.monotonic() - started
    discovery_requests = len(simulator.requests.matching("GET", "/groups/"))
    async with sessions() as session:
        watched = int(await session.scalar(select(func.count()).select_from(Subscription)) or 0)
        rows = (
            await session.execute(select(Subscription.project_id, Subscription.project_path))
        ).all()

    simulator.requests.clear()
    unpaced = GitLabClient(http, SERVICE_TOKEN)
    started = time.monotonic()
    result = await check_projects(
        sessions,
        unpaced,
        [(pid, path) for pid, path in rows],
        concurrency=args.concurrency,
        remind_after=timedelta(days=1),
    )
    scan_seconds = time.monotonic() - started
    scan_requests = len(simulator.requests.entries)
    await http.aclose()
    await engine.dispose()
    simulator.stop()
    return {
        "projects": args.projects,
        "mirrored": args.mirrored,
        "budget_per_minute": args.budget,
        "discovered": watched,
        "discovery_added": found.added,
        "discovery_requests": discovery_requests,
        "discovery_seconds": discovery_seconds,
        "scan_checked": result.checked,
        "scan_requests": scan_requests,
        "scan_requests_per_project": scan_requests / max(1, result.checked),
        "scan_seconds_unpaced": scan_seconds,
        "scan_seconds_at_budget": 60.0 * scan_requests / args.budget,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--projects", type=int, default=5000)
    parser.add_argument("--mirrored", type=int, default=300)
    parser.add_argument("--budget", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--figures")
    args = parser.parse_args()
    if args.tiny:
        args.projects, args.mirrored = 250, 15
    figures = asyncio.run(run(args))
    print(
        table(
            f"Group of {args.projects} projects, {args.mirrored} mirrored, "
            f"budget {args.budget}/min",
            [
                ("discovery: requests (pages of 100)", figures["discovery_requests"], ""),
                ("discovery: seconds", figures["discovery_seconds"], ""),
                ("discovery: projects found", figures["discovered"], ""),
                ("scan (per project, today): requests", figures["scan_requests"], ""),
                ("scan: requests per project", figures["scan_requests_per_project"], ""),
                ("scan: seconds at the budget", figures["scan_seconds_at_budget"], ""),
                ("scan: seconds unpaced (measured)", figures["scan_seconds_unpaced"], ""),
            ],
        )
    )
    write_figures(args.figures, figures)
    pages = -(-args.projects // 100)
    ok = (
        figures["discovered"] == args.projects
        and figures["discovery_requests"] == pages
        and figures["scan_checked"] == args.projects
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
