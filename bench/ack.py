"""Benchmark 1 — acknowledging Slack while GitLab is slow.

500 signed slash commands and button clicks, 25 at a time, against `mirrorbot serve`
with the GitLab simulator answering after 1 s. Every request must be acknowledged well
inside Slack's 3 s, and every reply must later reach its response_url.

Baseline: a handler that works before it acks — a bare ASGI app of its own (below) that
reads the project's push mirrors from GitLab and only then answers — sent the same
requests by the same load generator at the same concurrency, on the same simulator.

    python bench/ack.py            # 500 requests, 1 s GitLab latency
    python bench/ack.py --tiny     # 30 requests (CI)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlencode

import httpx
from common import (
    SIGNING_SECRET,
    TEAM_ID,
    USER_TOKEN,
    Serve,
    SlackStandIn,
    bot_env,
    cpu_seconds,
    free_port,
    mirrorbot,
    percentile,
    start_gitlab,
    table,
    world_with_projects,
    write_figures,
)
from loadgen import closed_loop, encode_post
from slack_sdk.signature import SignatureVerifier

from bot.commands.actions import MirrorActions, MirrorRef

# The baseline: answers Slack only after the GitLab read each command needs.
WORK_THEN_ACK_APP = """
import sys, httpx, uvicorn
port, gitlab_url, project_id, token = sys.argv[1:5]
client = httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=100))
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await client.get(f"{gitlab_url}/api/v4/projects/{project_id}/remote_mirrors",
                     headers={"PRIVATE-TOKEN": token})
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})
uvicorn.run(app, host="127.0.0.1", port=int(port), log_level="critical")
"""


def signed(body: str) -> dict[str, str]:  # valid for 5 minutes, as Slack allows
    ts = str(int(time.time()))
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": SignatureVerifier(SIGNING_SECRET).generate_signature(
            timestamp=ts, body=body
        ),
    }


def command_body(text: str, response_url: str) -> str:
    return urlencode(
        {
            "team_id": TEAM_ID,
            "channel_id": "C1",
            "user_id": "UBENCH",
            "command": "/mirror",
            "text": text,
            "response_url": response_url,
            "trigger_id": "t",
            "api_app_id": "A1",
        }
    )


def click_body(project_id: int, mirror_id: int, response_url: str) -> str:
    payload = {
        "type": "block_actions",
        "user": {"id": "UBENCH", "team_id": TEAM_ID},
        "team": {"id": TEAM_ID},
        "api_app_id": "A1",
        "channel": {"id": "C1"},
        "container": {"type": "message", "channel_id": "C1", "is_ephemeral": True},
        "response_url": response_url,
        "trigger_id": "t",
        "actions": [
            {
                "action_id": MirrorActions.DETAILS,
                "block_id": "b",
                "type": "button",
                "value": MirrorRef(project_id=project_id, mirror_id=mirror_id).dump(),
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)})


@dataclass
class Load:
    latencies: list[float]  # seconds, one per request
    seconds: float  # from the first request sent to the last answer
    server_cpu_seconds: float  # what the server used in that time


async def fire(url: str, requests: list[dict[str, str]], concurrency: int, server: int) -> Load:
    """Send pre-signed requests, `concurrency` at a time, to the server with pid `server`."""
    encoded = [encode_post(url, r["headers"], r["body"].encode()) for r in requests]
    cpu_before, started = cpu_seconds(server), time.monotonic()
    outcomes = await closed_loop(url, encoded, concurrency)
    cpu_used, seconds = cpu_seconds(server) - cpu_before, time.monotonic() - started
    assert all(o.status == 200 for o in outcomes), [o.status for o in outcomes if o.status != 200]
    return Load([o.seconds for o in outcomes], seconds, cpu_used)


def fire_from_another_process(
    url: str, pid: int, requests: list[dict[str, str]], concurrency: int
) -> Load:
    """The load comes from its own process, so it does not share a GIL with the simulator
    and the Slack stand-in running here."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
        json.dump(requests, file)
    output = subprocess.run(
        [sys.executable, __file__, "--generate", url, file.name, str(concurrency), str(pid)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return Load(**json.loads(output.stdout))


def work_then_ack_baseline(
    gitlab_url: str, project_id: int, requests: list[dict[str, str]], concurrency: int
) -> Load:
    """The same requests against the baseline app, which reads GitLab before answering."""
    port = free_port()
    command = [sys.executable, "-c", WORK_THEN_ACK_APP, str(port), gitlab_url, str(project_id)]
    process = subprocess.Popen([*command, USER_TOKEN])
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the baseline server did not start") from None
                time.sleep(0.1)
        return fire_from_another_process(
            f"http://127.0.0.1:{port}/slack/events", process.pid, requests, concurrency
        )
    finally:
        process.terminate()
        process.wait(timeout=10)


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=25)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--figures", help="also write the figures to this JSON file")
    parser.add_argument("--generate", nargs=4, metavar=("URL", "FILE", "CONCURRENCY", "PID"))
    args = parser.parse_args()
    if args.generate:
        url, path, concurrency, pid = args.generate
        requests = json.loads(Path(path).read_text())
        load = asyncio.run(fire(url, requests, int(concurrency), int(pid)))
        print(json.dumps(asdict(load)))
        return 0
    if args.tiny:
        args.requests, args.latency = 30, 0.2
    world, [project] = world_with_projects(1, mirrors=(2, 2))
    mirror_id = next(iter(project.push_mirrors))
    simulator = start_gitlab(world, args.latency)
    slack = SlackStandIn().start()
    with tempfile.TemporaryDirectory() as folder:
        env = bot_env(f"sqlite:///{Path(folder) / 'bench.db'}", simulator.url, slack)
        mirrorbot(env, "users", "link", "UBENCH", "--team", TEAM_ID, stdin=USER_TOKEN)
        serve = Serve(env)
        try:
            bodies = []
            for n in range(args.requests):
                response_url = slack.response_url(uuid.uuid4().hex)
                if n % 5 in (3, 4):
                    bodies.append(click_body(project.id, mirror_id, response_url))
                else:
                    text = ["list", "show", "key"][n % 5]
                    target = project.path if text == "list" else f"{project.path} {mirror_id}"
                    bodies.append(command_body(f"{text} {target}", response_url))
            requests = [{"body": body, "headers": signed(body)} for body in bodies]
            started, cpu_before = time.monotonic(), cpu_seconds(serve.process.pid)
            load = fire_from_another_process(
                f"{serve.url}/slack/events", serve.process.pid, requests, args.concurrency
            )
            acks = load.latencies
            slack.wait_for(lambda: len(slack.of("response_url")) >= args.requests, timeout=300)
            all_replied = time.monotonic() - started
            cpu_in_all = cpu_seconds(serve.process.pid) - cpu_before
            replies = len(slack.of("response_url"))
        finally:
            serve.stop()
    inline = work_then_ack_baseline(simulator.url, project.id, requests, args.concurrency).latencies
    simulator.stop()
    slack.stop()
    print(
        f"ack: {args.requests} signed commands and clicks, {args.concurrency} at a time, "
        f"GitLab latency {args.latency:.1f} s"
    )
    print(
        table(
            "time to Slack's response (ms)",
            [
                ("p50", ms(percentile(acks, 50)), ms(percentile(inline, 50))),
                ("p99", ms(percentile(acks, 99)), ms(percentile(inline, 99))),
                ("max", ms(max(acks)), ms(max(inline))),
                (
                    "over 3 s (count)",
                    sum(1 for a in acks if a > 3),
                    sum(1 for a in inline if a > 3),
                ),
            ],
        )
    )
    # The CPU includes the reply work each ack starts, up to its first GitLab call.
    print(
        f"\nall {args.requests} answered in {load.seconds:.2f} s "
        f"({args.requests / load.seconds:,.0f}/s), the server using "
        f"{load.server_cpu_seconds / args.requests * 1000:.2f} ms of CPU per request; "
        f"{replies} replies reached their response_url within {all_replied:.1f} s, "
        f"the server using {cpu_in_all / args.requests * 1000:.2f} ms of CPU per request "
        "in all"
    )
    write_figures(
        args.figures,
        {
            "requests": args.requests,
            "replies": replies,
            "ack_ms": {"p50": ms(percentile(acks, 50)), "max": ms(max(acks))},
            "baseline_ms": {"p50": ms(percentile(inline, 50)), "max": ms(max(inline))},
            "acks_over_3s": sum(1 for a in acks if a > 3),
            "gitlab_latency_ms": ms(args.latency),
        },
    )
    return 0 if replies >= args.requests else 1


if __name__ == "__main__":
    sys.exit(main())
