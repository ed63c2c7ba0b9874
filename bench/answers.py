"""Benchmark 7 — how long people wait for an answer, in GitLab round trips.

For each read command and for `sync`: the time from the signed request to the answer at
its response_url (a read) or in the channel (the sync's first answer), with the GitLab
simulator answering after 0.2 s and after 1 s, printed as a multiple of that latency; and
the GitLab requests and round trips each made, counted at the simulator. Each command
has a project of its own, so the simulator's log says which requests were whose. Then a
burst of 500 commands and clicks at 1 s, against its ideal for the connection pool.

Baseline: the same requests to the code of the base commit (`git merge-base HEAD main`),
run from a `git worktree` in a temporary directory, in the same run.

    python bench/answers.py            # ~2 minutes
    python bench/answers.py --tiny     # small and quick: the figures tests/test_bench.py checks
"""

from __future__ import annotations

import argparse
import math
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from ack import click_body, command_body, fire_from_another_process, signed
from common import (
    ROOT,
    TEAM_ID,
    USER_TOKEN,
    Serve,
    SlackStandIn,
    bot_env,
    mirrorbot,
    start_gitlab,
    write_figures,
)
from webhooks import fresh_postgres

from bot.simulator import Timing, World
from bot.simulator.server import RecordedRequest
from bot.simulator.world import SimProject

SERVICE = "glpat-bench-service-0000001"
COMMANDS = ("list", "show", "key", "pull", "sync")
POOL = 100  # GitLabHTTP's connections (create_http_client's default)
WAYS = {
    "alone": "each command alone",
    "together": "the five sent at once (their replies share the event loop)",
}


def make_world() -> tuple[World, dict[str, SimProject], SimProject]:
    world = World(
        Timing(update_seconds=0.2, sync_backoff_seconds=0, protected_sync_backoff_seconds=0)
    )
    service, user = world.add_user("monitor"), world.add_user("alice")
    world.add_token(service, SERVICE)
    world.add_token(user, USER_TOKEN)
    projects = {}
    for name in COMMANDS:
        project = world.add_project(f"answers/{name}", {service: 40, user: 40})
        world.add_push_mirror(project, f"https://m.example.org/{name}.git", enabled=True)
        world.add_push_mirror(
            project,
            f"ssh://git@m.example.org/{name}.git",
            enabled=True,
            auth_method="ssh_public_key",
        )
        world.set_pull_mirror(project, f"https://up.example.org/{name}.git", enabled=True)
        projects[name] = project
    burst = world.add_project("answers/burst", {service: 40, user: 40})
    for m in range(2):
        world.add_push_mirror(burst, f"https://m{m}.example.org/burst.git", enabled=True)
    return world, projects, burst


def command_text(name: str, project: SimProject) -> str:
    https, ssh = list(project.push_mirrors)
    if name in ("list", "pull"):
        return f"{name} {project.path}"
    return f"{name} {project.path} {ssh if name == 'key' else https}"


def belongs(entry: RecordedRequest, project: SimProject) -> bool:
    return any(
        entry.path == f"/projects/{ref}" or entry.path.startswith(f"/projects/{ref}/")
        for ref in (str(project.id), quote(project.path, safe=""))
    )


def round_trips(entries: list[RecordedRequest]) -> int:
    """As RequestLog.round_trips: a request that arrived after another was answered waited
    for it; requests sent together count once."""
    entries = sorted(entries, key=lambda e: e.at)
    depth: list[int] = []
    for n, entry in enumerate(entries):
        before = [depth[m] for m in range(n) if entries[m].answered_at <= entry.at]
        depth.append(1 + max(before, default=0))
    return max(depth, default=0)


def measure(
    serve: Serve,
    slack: SlackStandIn,
    simulator: Any,
    projects: dict[str, SimProject],
    reps: int,
    *,
    together: bool,
) -> dict[str, dict[str, float]]:
    """Each command `reps` times, the repetitions one after another: the five kinds sent
    at once (they share nothing, but their replies share the one event loop), or each
    alone; the median time to its answer, its requests and round trips."""
    seconds: dict[str, list[float]] = {name: [] for name in COMMANDS}
    requests: dict[str, list[int]] = {name: [] for name in COMMANDS}
    trips: dict[str, list[int]] = {name: [] for name in COMMANDS}
    groups = [COMMANDS] if together else [(name,) for name in COMMANDS]
    with httpx.Client(timeout=10) as client:
        for _ in range(reps):
            for group in groups:
                names = {name: uuid.uuid4().hex for name in group}
                sent: dict[str, float] = {}
                for name in group:
                    body = command_body(
                        command_text(name, projects[name]), slack.response_url(names[name])
                    )
                    sent[name] = time.monotonic()
                    assert (
                        client.post(
                            f"{serve.url}/slack/events", content=body, headers=signed(body)
                        ).status_code
                        == 200
                    )
                answers: dict[str, float] = {}
                slack.wait_for(partial(_arrived, slack, projects, names, sent, answers), timeout=60)
                for name in group:
                    mine = [
                        e
                        for e in simulator.requests.entries
                        if belongs(e, projects[name]) and sent[name] <= e.at < answers[name]
                    ]
                    seconds[name].append(answers[name] - sent[name])
                    requests[name].append(len(mine))
                    trips[name].append(round_trips(mine))
                # Let syncs' follow-ups end.
                time.sleep(0.5 if simulator.faults.latency < 0.5 else 2.5)
    return {
        name: {
            "seconds": statistics.median(seconds[name]),
            "requests": max(requests[name]),
            "round_trips": max(trips[name]),
        }
        for name in COMMANDS
    }


def _arrived(
    slack: SlackStandIn,
    projects: dict[str, SimProject],
    names: dict[str, str],
    sent: dict[str, float],
    answers: dict[str, float],
) -> bool:
    """Note when each command's answer arrived; True once all have."""
    for name in names:
        if name in answers:
            continue
        if name == "sync":  # the first answer is posted in the channel
            path = projects["sync"].path
            calls = slack.of("chat.postMessage")
            found = [c for c in calls if path in str(c.body) and c.at >= sent[name]]
        else:
            found = [c for c in slack.of("response_url") if c.path.endswith(names[name])]
        if found:
            answers[name] = found[0].at
    return len(answers) == len(names)


def burst(
    serve: Serve, slack: SlackStandIn, simulator: Any, project: SimProject, count: int
) -> dict[str, float]:
    """`count` commands and clicks (list, show, key, Details), 25 at a time as Slack
    sends them; seconds until every reply reached its response_url, and GitLab requests."""
    https, _ = list(project.push_mirrors)
    before = len(slack.of("response_url"))
    bodies = []
    for n in range(count):
        url = slack.response_url(uuid.uuid4().hex)
        if n % 5 in (3, 4):
            bodies.append(click_body(project.id, https, url))
        else:
            text = ["list", "show", "key"][n % 5]
            target = project.path if text == "list" else f"{project.path} {https}"
            bodies.append(command_body(f"{text} {target}", url))
    requests = [{"body": body, "headers": signed(body)} for body in bodies]
    since = time.monotonic()
    fire_from_another_process(f"{serve.url}/slack/events", serve.process.pid, requests, 25)
    slack.wait_for(lambda: len(slack.of("response_url")) - before >= count, timeout=120)
    last = max(c.at for c in slack.of("response_url"))
    made = [e for e in simulator.requests.entries if e.at >= since]
    # From the first GitLab request: the load generator's own start-up is not the bot's.
    since = min(e.at for e in made)
    gitlab_requests = len(made)
    ideal = math.ceil(gitlab_requests / POOL) * simulator.faults.latency
    return {
        "seconds": last - since,
        "replies": len(slack.of("response_url")) - before,
        "gitlab_requests": gitlab_requests,
        "ideal": ideal,
    }


def run_version(
    label: str,
    pythonpath: str | None,
    latencies: list[float],
    reps: int,
    burst_size: int,
    postgres: bool = False,
) -> dict[str, Any]:
    world, projects, burst_project = make_world()
    simulator = start_gitlab(world, 0.0)
    slack = SlackStandIn().start()
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        extra = {"PYTHONPATH": pythonpath} if pythonpath else {}
        database_url = fresh_postgres() if postgres else f"sqlite:///{Path(folder) / 'bench.db'}"
        env = bot_env(database_url, simulator.url, slack, **extra)
        env["MIRRORBOT_APPROVAL_REQUIRED"] = "delete"
        # From the code's own folder: `python -m` puts the working directory first.
        cwd = pythonpath or str(ROOT)
        running = subprocess.run(
            [sys.executable, "-c", "import bot; print(bot.__file__)"],
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert running.startswith(cwd), (running, cwd)
        mirrorbot(env, "users", "link", "UBENCH", "--team", TEAM_ID, stdin=USER_TOKEN, cwd=cwd)
        serve = Serve(env, cwd=cwd)
        try:
            for latency in latencies:
                simulator.faults.latency = latency
                for together, way in ((False, "alone"), (True, "together")):
                    figures[f"{latency:g} {way}"] = measure(
                        serve, slack, simulator, projects, reps, together=together
                    )
            if burst_size:
                simulator.faults.latency = (
                    1.0 if not latencies or max(latencies) >= 1 else max(latencies)
                )
                figures["burst"] = burst(serve, slack, simulator, burst_project, burst_size)
        finally:
            serve.stop()
    simulator.stop()
    slack.stop()
    print(f"  {label}: done", file=sys.stderr)
    return figures


# The last commit before reads took one round trip: the baseline every run compares with
# (a merge-base with main is this very commit once the change is on main).
BASE_COMMIT = "212d0ce121fb0f950ec9da53170689d129116db1"


def base_worktree(base: str = BASE_COMMIT) -> tuple[str, str]:
    folder = tempfile.mkdtemp(prefix="mirrorbot-base-")
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", folder, base],
        capture_output=True,
        check=True,
    )
    return base, folder


def drop_worktree(folder: str) -> None:
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "remove", "--force", folder], capture_output=True
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latencies", type=float, nargs="+", default=[0.2, 1.0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--burst", type=int, default=500)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--postgres", action="store_true", help="the bot on PostgreSQL")
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--figures", help="also write the figures to this JSON file")
    args = parser.parse_args()
    if args.tiny:
        args.latencies, args.reps, args.burst = [0.1], 1, 20
    ours = run_version("this commit", None, args.latencies, args.reps, args.burst, args.postgres)
    base: dict[str, Any] = {}
    commit = None
    if not args.no_baseline:
        commit, folder = base_worktree()
        try:
            base = run_version(
                f"base {commit[:7]}", folder, args.latencies, args.reps, args.burst, args.postgres
            )
        finally:
            drop_worktree(folder)
    print(
        "answers: time from the signed request to the answer, as a multiple of GitLab's "
        f"latency ({'PostgreSQL' if args.postgres else 'SQLite'})"
    )
    print(f"(baseline: base commit {commit[:7] if commit else '-'}, same run)")
    ok = True
    for latency, way in ((lat, way) for lat in args.latencies for way in ("alone", "together")):
        key = f"{latency:g} {way}"
        print(f"\n## GitLab latency {latency:g} s, {WAYS[way]}")
        print(f"{'command':8}  {'this commit':>24}  {'base commit':>24}  goal")
        for name in COMMANDS:
            a = ours[key][name]
            b = base.get(key, {}).get(name)
            goal = 1.1 if name == "sync" else (1.1 * latency + 0.02) / latency
            mine = f"{a['seconds'] / latency:.2f}× ({a['requests']} req, {a['round_trips']} rt)"
            theirs = (
                f"{b['seconds'] / latency:.2f}× ({b['requests']} req, {b['round_trips']} rt)"
                if b
                else "-"
            )
            met = a["seconds"] / latency <= goal
            ok = ok and a["round_trips"] == 1
            print(
                f"{name:8}  {mine:>24}  {theirs:>24}  ≤ {goal:.2f}× {'met' if met else 'NOT met'}"
            )
    if args.burst:
        a, b = ours["burst"], base.get("burst")
        print(f"\n## burst of {args.burst} commands and clicks, 25 at a time")
        for figures, label in ((a, "this commit"), (b, "base commit")):
            if figures:
                print(
                    f"{label}: all {figures['replies']} replies in {figures['seconds']:.1f} s; "
                    f"{figures['gitlab_requests']} GitLab requests, ideal for {POOL} connections "
                    f"ceil({figures['gitlab_requests']}/{POOL}) × latency = "
                    f"{figures['ideal']:.1f} s "
                    f"→ {figures['seconds'] / figures['ideal']:.2f}× of ideal"
                )
        ok = ok and a["replies"] >= args.burst
    write_figures(args.figures, {"ours": ours, "base": base, "commands": list(COMMANDS)})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
