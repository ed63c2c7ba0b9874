"""Socket Mode end to end: apps.connections.open through SLACK_API_URL, a WebSocket on
127.0.0.1, a slash command envelope in, the ack and the reply out — and no Slack payload
accepted over HTTP, signed or not."""

import time
import uuid

import httpx
import pytest

from bot.commands.actions import MirrorActions, MirrorRef
from bot.slack.ids import FormContext, Views
from bot.store.crypto import generate_key
from tests.conftest import ALICE_TOKEN
from tests.fakes.bot_server import BotServer, SlackUserAgent
from tests.fakes.slack import TEAM_ID
from tests.fakes.socket_mode import SocketModeStandIn
from tests.slack.conftest import Harness, bot_settings

# What a person's action makes the bot say (the stand-in records every call).
REPLIES = ("response_url", "chat.postMessage", "chat.postEphemeral", "chat.update", "views.open")


@pytest.fixture
def socket_stand_in():
    stand_in = SocketModeStandIn().start()
    yield stand_in
    stand_in.stop()


@pytest.fixture
def socket_harness(sample, gitlab_sim, slack, sqlite_url, socket_stand_in):
    slack.socket_url = socket_stand_in.url
    settings = bot_settings(
        sqlite_url, gitlab_sim.url, slack, generate_key(), slack_app_token=slack.app_token
    )
    server = BotServer(settings, socket_mode=True).start()
    harness = Harness(
        sample, gitlab_sim, slack, server, SlackUserAgent(server.url, slack, TEAM_ID), settings
    )
    harness.link("UALICE", ALICE_TOKEN)
    socket_stand_in.wait_connected()
    yield harness
    server.stop()


def send_list_command(stand_in: SocketModeStandIn, h: Harness, name: str) -> str:
    envelope_id = str(uuid.uuid4())
    stand_in.send(
        {
            "envelope_id": envelope_id,
            "type": "slash_commands",
            "accepts_response_payload": True,
            "payload": {
                "token": "legacy",
                "team_id": TEAM_ID,
                "channel_id": "C1",
                "user_id": "UALICE",
                "command": "/mirror",
                "text": "list group/app",
                "api_app_id": "A1",
                "response_url": h.slack.response_url(name),
                "trigger_id": "t1",
            },
        }
    )
    return envelope_id


def test_a_slash_command_over_socket_mode_is_acked_and_answered(socket_harness, socket_stand_in):
    harness, slack = socket_harness, socket_harness.slack
    assert [c.token for c in slack.of("apps.connections.open")] == [slack.app_token]
    envelope_id = send_list_command(socket_stand_in, harness, "socket")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not any(
        a.get("envelope_id") == envelope_id for a in socket_stand_in.acks
    ):
        time.sleep(0.02)
    assert any(a.get("envelope_id") == envelope_id for a in socket_stand_in.acks)
    harness.wait_response("2 push mirrors")
    # Health, metrics and the webhook are still served over HTTP.
    assert httpx.get(f"{harness.server.url}/healthz").status_code == 200
    # Without GITLAB_WEBHOOK_SECRET the webhook lets nobody in.
    assert httpx.post(f"{harness.server.url}/gitlab/webhook", content=b"{}").status_code == 401


def forged_requests(h: Harness, **signing):
    """A command, a click and a form that would each change a mirror as alice."""
    mirror = h.sample.https_mirror.id
    view = {
        "callback_id": Views.ADD_PUSH_MIRROR,
        "private_metadata": FormContext(channel_id="C1", project="group/app").dump(),
    }
    url = {"url": {"url": {"type": "plain_text_input", "value": "https://evil.example/x.git"}}}
    return [
        h.agent.command(f"sync group/app {mirror}", **signing),
        h.agent.command(f"delete group/app {mirror}", **signing),
        h.agent.click(
            MirrorActions.SYNC,
            MirrorRef(project_id=h.sample.app.id, mirror_id=mirror).dump(),
            **signing,
        ),
        h.agent.submit(view, url, **signing),
    ]


@pytest.mark.parametrize(
    "signing",
    [
        {"unsigned": True},
        {"secret": "a-guessed-secret"},
        # Even a valid signature: in Socket Mode, Slack sends nothing over HTTP.
        {},
    ],
    ids=["unsigned", "wrongly-signed", "signed"],
)
def test_socket_mode_serves_no_slack_payload_over_http(socket_harness, socket_stand_in, signing):
    h = socket_harness
    h.gitlab.requests.clear()
    refused = forged_requests(h, **signing)
    assert [r.status_code for r in refused] == [404] * len(refused)
    # Evidence that the pipeline runs: a real Socket Mode command is answered...
    send_list_command(socket_stand_in, h, "real")
    h.wait_response("2 push mirrors")
    # ...and it is all that reached GitLab and Slack.
    changes = [r for r in h.gitlab.requests.entries if r.method != "GET"]
    assert changes == []
    assert not h.gitlab.requests.matching("GET", f"/remote_mirrors/{h.sample.https_mirror.id}")
    replies = [c for c in h.slack.calls if c.method in REPLIES]
    assert [c.path for c in replies] == ["/response/real"]
