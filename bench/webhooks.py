"""Benchmark 3 (and 5, memory) — webhook intake at rising rates, with SQLite and PostgreSQL.

Push events are sent open-loop at each rate for a few seconds to `mirrorbot serve`; the
figures are the accepted rate and the latency of the 200s. Then `kill -9` in the middle
of a run and a restart: every event that got a 200 must be processed, none twice. That
run's events each name a project of their own, all watched, so processing an event
leaves its own trace: the checks it schedules for its project. An event processed twice
schedules them twice; one marked processed but never processed schedules none. The
exit status is non-zero unless every acknowledged event was processed exactly once.
Memory: the server's resident set when idle and its peak under this load.

Baseline: the same load against a bare ASGI endpoint that answers 200 and stores nothing
(the floor of HTTP handling on this machine), in the same run.

    python bench/webhooks.py                # rates 500…3000/s, SQLite and PostgreSQL
    python bench/webhooks.py --tiny         # one small rate, SQLite (CI)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from common import (
    Serve,
    SlackStandIn,
    bot_env,
    cpu_seconds,
    free_port,
    percentile,
    table,
    write_figures,
)
from loadgen import encode_post, open_loop
from sqlalchemy import create_engine, text

from bot.store.db import sync_url
from bot.store.migrate import upgrade_database
from bot.store.models import Subscription

SECRET = "bench-webhook-secret"
POSTGRES_ADMIN_URL = os.environ.get(
    "MIRRORBOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
BARE_APP = """
import sys, uvicorn
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"status":"stored"}'})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="critical")
"""


# --- the load generator (its own process) --------------------------------------------------


async def generate(url: str, rate: int, seconds: float, distinct: bool = False) -> dict:
    """Open-loop push events; with `distinct`, event n is a push to project n + 1."""

    def body(n: int) -> bytes:
        event = {
            "object_kind": "push",
            "event_name": "push",
            "project_id": n + 1 if distinct else 999999,
            "ref": "refs/heads/main",
            "commits": [],
        }
        return json.dumps(event).encode()

    keys = [str(uuid.uuid4()) for _ in range(int(rate * seconds))]
    requests = [
        encode_post(
            url,
            {
                "X-Gitlab-Token": SECRET,
                "X-Gitlab-Event": "Push Hook",
                "Content-Type": "application/json",
                "Idempotency-Key": key,
                "X-Gitlab-Event-UUID": key,
            },
            body(n),
        )
        for n, key in enumerate(keys)
    ]
    outcomes, elapsed = await open_loop(url, requests, rate)
    results = [(keys[o.index], o.status, o.seconds) for o in outcomes]
    return {"results": results, "elapsed": elapsed}


def run_generator(url: str, rate: int, seconds: float, server_pid: int) -> dict:
    """The load from its own process; adds the CPU the server used meanwhile."""
    cpu_before = cpu_seconds(server_pid)
    output = subprocess.run(
        [sys.executable, __file__, "--generate", url, str(rate), str(seconds)],
        capture_output=True,
        text=True,
        timeout=seconds * 10 + 60,
        check=True,
    )
    return {**json.loads(output.stdout), "server_cpu": cpu_seconds(server_pid) - cpu_before}


def summarise(run: dict) -> dict:
    ok = [latency for _, status, latency in run["results"] if status == 200]
    return {
        "accepted_per_s": len(ok) / run["elapsed"],
        "p50_ms": percentile(ok, 50) * 1000,
        "p99_ms": percentile(ok, 99) * 1000,
        "errors": len(run["results"]) - len(ok),
        "server_cpu_ms_per_event": run["server_cpu"] / max(len(ok), 1) * 1000,
    }


# --- the benchmark -------------------------------------------------------------------------


def fresh_postgres() -> str:
    name = f"mirrorbot_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"


def inbox_state(database_url: str) -> tuple[int, int, set[str]]:
    engine = create_engine(sync_url(database_url))
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT delivery_key, processed_at IS NOT NULL FROM webhook_inbox")
        ).all()
    engine.dispose()
    return len(rows), sum(1 for _, done in rows if done), {key for key, _ in rows}


def processing_counts(database_url: str) -> dict[str, int]:
    """Delivery key → how many inbox passes processed its event (the pass adds one to the
    event's `attempts` in the same UPDATE that marks it processed); 0 for one never
    processed. Rows alone cannot show a double processing: the delivery key is UNIQUE."""
    engine = create_engine(sync_url(database_url))
    with engine.connect() as connection:
        counts = dict(
            connection.execute(text("SELECT delivery_key, attempts FROM webhook_inbox")).all()
        )
    engine.dispose()
    return {key: int(count) for key, count in counts.items()}


def watch_projects(database_url: str, count: int) -> None:
    upgrade_database(database_url)
    engine = create_engine(sync_url(database_url))
    with engine.begin() as connection:
        connection.execute(
            Subscription.__table__.insert(),
            [
                {
                    "slack_team_id": "T",
                    "channel_id": "C",
                    "project_id": n + 1,
                    "project_path": f"bench/p{n + 1}",
                    "created_by": "U",
                }
                for n in range(count)
            ],
        )
    engine.dispose()


def bench_backend(
    name: str, database_url: str, rates: list[int], seconds: float, slack: SlackStandIn
) -> tuple[list[tuple[str, dict]], dict]:
    env = bot_env(database_url, "http://127.0.0.1:9", slack)
    env.pop("GITLAB_SERVICE_TOKEN")  # intake only: no monitor
    env["GITLAB_WEBHOOK_SECRET"] = SECRET
    serve = Serve(env)
    time.sleep(1.0)
    memory = {"idle_kb": serve.memory_kb()["VmRSS"]}
    figures = []
    try:
        for rate in rates:
            figures.append(
                (
                    f"{name} {rate}/s",
                    summarise(
                        run_generator(
                            f"{serve.url}/gitlab/webhook", rate, seconds, serve.process.pid
                        )
                    ),
                )
            )
        memory["peak_kb"] = serve.memory_kb()["VmHWM"]
    finally:
        serve.stop()
    return figures, memory


def crash_and_restart(database_url: str, rate: int, seconds: float, slack: SlackStandIn) -> dict:
    """kill -9 in the middle of a run; after a restart every 200 is processed, once."""
    watch_projects(database_url, int(rate * seconds))
    env = bot_env(database_url, "http://127.0.0.1:9", slack)
    env.pop("GITLAB_SERVICE_TOKEN")  # no checks run: the ones scheduled stay to be counted
    env["GITLAB_WEBHOOK_SECRET"] = SECRET
    serve = Serve(env)
    generator = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--generate",
            f"{serve.url}/gitlab/webhook",
            str(rate),
            str(seconds),
            "--distinct",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while inbox_state(database_url)[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)  # the generator is starting; kill only once events flow
    time.sleep(seconds / 3)
    serve.kill9()
    output, _ = generator.communicate(timeout=seconds * 10 + 60)
    results = json.loads(output)["results"]
    acknowledged = {key for key, status, _ in results if status == 200}
    restarted = Serve(env)
    try:
        deadline = time.monotonic() + max(30.0, seconds * 20)
        while True:
            total, processed, keys = inbox_state(database_url)
            if processed == total or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        times_processed = processing_counts(database_url)
    finally:
        restarted.stop()
    return {
        "acknowledged": len(acknowledged),
        "stored": total,
        "processed": processed,
        "lost": len(acknowledged - keys),
        "not_processed": sum(1 for key in acknowledged if times_processed.get(key, 0) == 0),
        "processed_twice": sum(1 for n in times_processed.values() if n > 1),
    }


def bare_baseline(rates: list[int], seconds: float) -> list[dict]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", BARE_APP, str(port)])
    try:
        time.sleep(1.5)
        return [
            summarise(run_generator(f"http://127.0.0.1:{port}/", rate, seconds, process.pid))
            for rate in rates
        ]
    finally:
        process.terminate()
        process.wait(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", default="500,1000,2000,3000")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--figures", help="also write the figures to this JSON file")
    parser.add_argument("--generate", nargs=3, metavar=("URL", "RATE", "SECONDS"))
    parser.add_argument("--distinct", action="store_true", help="with --generate")
    args = parser.parse_args()
    if args.generate:
        url, rate, seconds = args.generate
        print(json.dumps(asyncio.run(generate(url, int(rate), float(seconds), args.distinct))))
        return 0
    if args.tiny:
        args.rates, args.seconds, args.no_postgres = "100", 1.0, True
    rates = [int(r) for r in args.rates.split(",")]
    slack = SlackStandIn().start()
    rows: list[tuple[str, dict]] = []
    memory: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as folder:
        backends = [("sqlite", f"sqlite:///{Path(folder) / 'bench.db'}")]
        if not args.no_postgres:
            backends.append(("postgres", fresh_postgres()))
        for name, url in backends:
            figures, memory[name] = bench_backend(name, url, rates, args.seconds, slack)
            rows += figures
        crash = crash_and_restart(
            f"sqlite:///{Path(folder) / 'crash.db'}",
            rates[-1] // 2 or 50,
            max(args.seconds, 2.0),
            slack,
        )
    baseline = bare_baseline(rates, args.seconds)
    slack.stop()
    print(f"webhook intake: open-loop rates {rates} for {args.seconds:.0f} s each")
    for (label, ours), theirs in zip(rows, baseline * len(memory), strict=False):
        print(table(label, [(k, ours[k], theirs[k]) for k in ours]))
    for name, figures in memory.items():
        print(
            f"\nmemory ({name}): idle {figures['idle_kb'] / 1024:.0f} MB, "
            f"peak under load {figures['peak_kb'] / 1024:.0f} MB"
        )
    print(
        f"\nkill -9 mid-run: {crash['acknowledged']} answered 200, {crash['stored']} stored, "
        f"{crash['processed']} marked processed after restart; {crash['lost']} lost, "
        f"{crash['not_processed']} answered 200 but not processed, "
        f"{crash['processed_twice']} processed twice (counted by the inbox passes of each)"
    )
    write_figures(
        args.figures,
        {
            "rates": dict(rows),
            "baseline": dict(
                zip([label for label, _ in rows], baseline * len(memory), strict=False)
            ),
            "memory": memory,
            "crash": crash,
        },
    )
    every_ack_processed_once = (
        crash["acknowledged"] > 0
        and crash["lost"] == 0
        and crash["not_processed"] == 0
        and crash["processed_twice"] == 0
    )
    return 0 if every_ack_processed_once else 1


if __name__ == "__main__":
    sys.exit(main())
