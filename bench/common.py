"""Shared pieces of the benchmarks: what they start on 127.0.0.1 and how they measure.

Every benchmark is bounded in requests and time, targets loopback only, stops by itself,
and prints its figures next to its baseline's from the same run.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the Slack stand-in lives with the tests
    sys.path.insert(0, str(ROOT))

from bot.simulator import GitLabSimulator, Timing, World
from bot.simulator.world import SimProject
from bot.store.crypto import generate_key
from tests.fakes.bot_server import SIGNING_SECRET
from tests.fakes.slack import BOT_TOKEN, TEAM_ID, SlackStandIn

SERVICE_TOKEN = "glpat-bench-service-0000001"
USER_TOKEN = "glpat-bench-user-000000002"
__all__ = ["BOT_TOKEN", "SIGNING_SECRET", "TEAM_ID", "SlackStandIn"]


def world_with_projects(
    count: int, *, mirrors: tuple[int, int] = (1, 3), seed: int = 7
) -> tuple[World, list[SimProject]]:
    """`count` projects, each with a random number of enabled push mirrors."""
    rng = random.Random(seed)
    world = World(
        Timing(update_seconds=0.2, sync_backoff_seconds=0, protected_sync_backoff_seconds=0)
    )
    service, user = world.add_user("monitor"), world.add_user("alice")
    world.add_token(service, SERVICE_TOKEN)
    world.add_token(user, USER_TOKEN)
    projects = []
    for n in range(count):
        project = world.add_project(f"bench/project-{n:05d}", {service: 40, user: 40})
        for m in range(rng.randint(*mirrors)):
            mirror = world.add_push_mirror(
                project, f"https://mirror{m}.example.org/p{n}.git", enabled=True
            )
            world.succeed_at(mirror, world.clock())
        projects.append(project)
    return world, projects


def write_figures(path: str | None, figures: dict[str, Any]) -> None:
    """The run's figures as JSON (`--figures PATH`), for tests/test_bench.py to check."""
    if path:
        Path(path).write_text(json.dumps(figures, default=float))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def bot_env(
    database_url: str, gitlab_url: str, slack: SlackStandIn, **extra: str
) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "GITLAB_", "MIRRORBOT_", "DATABASE_URL"))
    }
    env.update(
        {
            "DATABASE_URL": database_url,
            "MIRRORBOT_SECRET_KEY": generate_key(),
            "GITLAB_URL": gitlab_url,
            "GITLAB_SERVICE_TOKEN": SERVICE_TOKEN,
            "GITLAB_WEBHOOK_SECRET": "bench-webhook-secret",
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.api_url,
            "MIRRORBOT_LOG_LEVEL": "INFO",  # as in production: a line per request
            "MIRRORBOT_POLL_INTERVAL": "3600",
        }
    )
    env.update(extra)
    return env


def mirrorbot(env: dict[str, str], *args: str, stdin: str = "", cwd: str | None = None) -> None:
    subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        env=env,
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )


def cpu_seconds(pid: int) -> float:
    """User plus system CPU process `pid` has used so far: unlike a latency, it barely
    moves with what else the shared machine is doing."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Serve:
    """`mirrorbot serve` as its own process, as in production (no shared GIL with the load)."""

    def __init__(
        self, env: dict[str, str], command: list[str] | None = None, cwd: str | None = None
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = command or [
            sys.executable,
            "-m",
            "bot",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        self.process = subprocess.Popen(
            args, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{self.url}/healthz", timeout=1)
                return
            except httpx.TransportError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.1)

    def memory_kb(self) -> dict[str, int]:
        """Current (VmRSS) and peak (VmHWM) resident memory of the process."""
        figures = {}
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                figures[name] = int(value.split()[0])
        return figures

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def kill9(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))
    return ordered[index]


def table(
    title: str, rows: list[tuple[Any, ...]], headers: tuple[str, ...] = ("mirrorbot", "baseline")
) -> str:
    width = max(len(row[0]) for row in rows)
    lines = [f"\n## {title}", f"{'':{width}}  " + "  ".join(f"{h:>14}" for h in headers)]
    lines += [
        f"{row[0]:{width}}  " + "  ".join(f"{_fmt(value):>14}" for value in row[1:]) for row in rows
    ]
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if value < 100 else f"{value:,.0f}"
    return str(value)


def start_gitlab(world: World, latency: float) -> GitLabSimulator:
    simulator = GitLabSimulator(world).start()
    simulator.faults.latency = latency
    return simulator
