"""Socket Mode end to end: apps.connections.open through SLACK_API_URL, a WebSocket on
127.0.0.1, a slash command envelope in, the ack and the reply out."""

import time
import uuid

import httpx
import pytest

from bot.store.crypto import generate_key
from tests.conftest import ALICE_TOKEN
from tests.fakes.bot_server import BotServer, SlackUserAgent
from tests.fakes.slack import TEAM_ID
from tests.fakes.socket_mode import SocketModeStandIn
from tests.slack.conftest import Harness, bot_settings


@pytest.fixture
def socket_stand_in():
    stand_in = SocketModeStandIn().start()
    yield stand_in
    stand_in.stop()


def test_a_slash_command_over_socket_mode_is_acked_and_answered(
    sample, gitlab_sim, slack, sqlite_url, socket_stand_in
):
    slack.socket_url = socket_stand_in.url
    settings = bot_settings(
        sqlite_url, gitlab_sim.url, slack, generate_key(), slack_app_token=slack.app_token
    )
    server = BotServer(settings, socket_mode=True).start()
    try:
        harness = Harness(
            sample, gitlab_sim, slack, server, SlackUserAgent(server.url, slack, TEAM_ID), settings
        )
        harness.link("UALICE", ALICE_TOKEN)
        socket_stand_in.wait_connected()
        assert [c.token for c in slack.of("apps.connections.open")] == [slack.app_token]
        envelope_id = str(uuid.uuid4())
        socket_stand_in.send(
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
                    "response_url": slack.response_url("socket"),
                    "trigger_id": "t1",
                },
            }
        )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(
            a.get("envelope_id") == envelope_id for a in socket_stand_in.acks
        ):
            time.sleep(0.02)
        assert any(a.get("envelope_id") == envelope_id for a in socket_stand_in.acks)
        harness.wait_response("2 push mirrors")
        # Health, metrics and the webhook are still served over HTTP.
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        assert httpx.post(f"{server.url}/gitlab/webhook", content=b"{}").status_code == 503
    finally:
        server.stop()
