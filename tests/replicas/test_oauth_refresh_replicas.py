"""Two replicas (two apps in this process, each with its own engine and pool) on one
PostgreSQL database refresh the same OAuth link at the same moment: one refresh."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from bot.simulator import Fault, GitLabSimulator
from bot.store.crypto import generate_key
from tests.conftest import SampleGitLab
from tests.fakes.bot_server import SlackUserAgent
from tests.fakes.slack import TEAM_ID, SlackStandIn
from tests.slack.test_oauth_login import log_in, oauth_app, oauth_harness


@pytest.mark.postgres
def test_two_replicas_refreshing_one_link_at_once_make_one_refresh(
    sample: SampleGitLab, gitlab_sim: GitLabSimulator, slack: SlackStandIn, postgres_url: str
) -> None:
    oauth_app(sample)
    key = generate_key()
    first = oauth_harness(sample, gitlab_sim, slack, postgres_url, key)
    second = oauth_harness(sample, gitlab_sim, slack, postgres_url, key)
    try:
        log_in(first)
        sample.world.expire_oauth_access_tokens()
        held = gitlab_sim.inject(Fault("hold", path="^/oauth/token$", method="POST", times=None))
        first.command("list group/app")
        SlackUserAgent(second.server.url, slack, TEAM_ID).command("list group/app")
        # One replica's refresh is held at GitLab with the link's row locked; the other
        # waits for that lock. Only then is the refresh answered.
        first.wait(
            lambda: first.read(text("SELECT count(*) FROM pg_locks WHERE NOT granted"))[0] >= 1
        )
        held.release()
        first.wait(
            lambda: len([b for b in first.responses() if "push mirror" in json.dumps(b)]) == 2
        )
        presented = sample.world.oauth.refresh_presented
        assert sum(presented.values()) == 1
    finally:
        second.server.stop()
        first.server.stop()
