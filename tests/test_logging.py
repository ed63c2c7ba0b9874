"""No secret in any log line: the filter, and a whole scenario's logs grepped for secrets."""

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bot.logs import JsonFormatter, SecretFilter
from bot.store.crypto import generate_key
from tests.conftest import ALICE_TOKEN
from tests.fakes.bot_server import SIGNING_SECRET, SlackUserAgent
from tests.fakes.slack import BOT_TOKEN, TEAM_ID, SlackStandIn


def scrubbed(message: str, *args: object, secrets: tuple[str, ...] = ()) -> str:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, message, args or None, None)
    SecretFilter(secrets).filter(record)
    return record.getMessage()


def test_the_filter_masks_every_kind_of_secret():
    assert "hunter2" not in scrubbed("push to %s failed", "https://bot:hunter2@h.example/x")
    assert "glpat-" not in scrubbed("token glpat-abcdefghijklmnop rejected")
    assert "xoxb-" not in scrubbed("Slack token xoxb-1234-5678-abcdefgh")
    assert "sesame" not in scrubbed("headers {'PRIVATE-TOKEN': 'sesame'}")
    assert "opensesame" not in scrubbed("X-Gitlab-Token: opensesame")
    assert "my-webhook-secret" not in scrubbed(
        "secret is my-webhook-secret", secrets=("my-webhook-secret",)
    )


def test_exceptions_are_scrubbed_too():
    try:
        raise RuntimeError("cannot push to https://u:topsecret@h.example/x")
    except RuntimeError:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    SecretFilter().filter(record)
    assert "topsecret" not in (record.exc_text or "")
    assert "topsecret" not in JsonFormatter().format(record)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_serve(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return process
        except httpx.TransportError:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "serve did not come up"
            time.sleep(0.1)


def stop(process: subprocess.Popen[bytes]) -> float:
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=15)
    return time.monotonic() - started


def test_a_full_scenario_logs_no_secret_and_survives_sigterm(
    tmp_path: Path, sample, gitlab_sim, slack: SlackStandIn
):
    secret_key = generate_key()
    webhook_secret = "webhook-secret-value-42"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "GITLAB_", "MIRRORBOT_", "DATABASE_URL"))
    }
    env.update(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
            "MIRRORBOT_SECRET_KEY": secret_key,
            "GITLAB_URL": gitlab_sim.url,
            "GITLAB_SERVICE_TOKEN": ALICE_TOKEN,
            "GITLAB_WEBHOOK_SECRET": webhook_secret,
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.api_url,
            "MIRRORBOT_LOG_LEVEL": "DEBUG",
            "MIRRORBOT_LOG_FORMAT": "json",
            "MIRRORBOT_POLL_INTERVAL": "3600",
        }
    )
    link = subprocess.run(
        [sys.executable, "-m", "bot", "users", "link", "UALICE"],
        input=ALICE_TOKEN,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert link.returncode == 0, link.stderr
    log = tmp_path / "serve.log"
    port = free_port()
    server = start_serve(env, port, log)
    agent = SlackUserAgent(f"http://127.0.0.1:{port}", slack, TEAM_ID)
    agent.command("list group/app")
    slack.wait_for(lambda: slack.of("response_url"))
    agent.command("watch group/app", channel="CALERTS")
    slack.wait_for(lambda: len(slack.of("response_url")) >= 2)
    # Slack goes down; a mirror fails; GitLab announces a push.
    slack.down("chat.postMessage", times=10_000)
    sample.world.fail_now(
        sample.https_mirror,
        "fatal: Authentication failed for 'https://mirror-bot:s3cr3t-pass@github.example.org/'",
    )
    hook = httpx.post(
        f"http://127.0.0.1:{port}/gitlab/webhook",
        headers={
            "X-Gitlab-Token": webhook_secret,
            "X-Gitlab-Event": "Push Hook",
            "Content-Type": "application/json",
        },
        content=json.dumps({"object_kind": "push", "project_id": sample.app.id}).encode(),
    )
    assert hook.status_code == 200
    slack.wait_for(lambda: any(c.status == 503 for c in slack.calls), timeout=30)
    # SIGTERM with the alert still undelivered: it stops in time and loses nothing.
    assert stop(server) < 10
    slack._faults.clear()
    server = start_serve(env, port, log)
    try:
        slack.wait_for(
            lambda: [
                c
                for c in slack.of("chat.postMessage")
                if "Mirror failing" in c.body.get("text", "")
            ],
            timeout=40,
        )
    finally:
        stop(server)
    alerts = [c for c in slack.of("chat.postMessage") if "Mirror failing" in c.body.get("text", "")]
    assert len(alerts) == 1
    text = log.read_text()
    assert "gitlab GET" in text and "/slack/events" in text  # the log is not empty
    for secret in (
        ALICE_TOKEN,
        BOT_TOKEN,
        SIGNING_SECRET,
        secret_key,
        webhook_secret,
        "s3cr3t-pass",
    ):
        assert secret not in text, f"{secret[:6]}… leaked into the logs"
