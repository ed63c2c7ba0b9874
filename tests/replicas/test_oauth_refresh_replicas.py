"""Two replicas on one PostgreSQL database refresh the same OAuth link at the same moment:
one refresh. Once as two apps in this process (each with its own engine and pool), once
as two `mirrorbot serve` processes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from bot.simulator import Fault, GitLabSimulator
from bot.store.crypto import generate_key
from bot.store.db import sync_url
from bot.store.migrate import upgrade_database
from tests.conftest import SampleGitLab
from tests.fakes.bot_server import SIGNING_SECRET, SlackUserAgent
from tests.fakes.serve_process import ServeProcess, serve_env
from tests.fakes.slack import BOT_TOKEN, TEAM_ID, SlackStandIn
from tests.slack.test_oauth_login import CLIENT_ID, log_in, oauth_app, oauth_harness

# One at a time with the suite's other process tests (pyproject.toml, addopts).
pytestmark = pytest.mark.xdist_group("processes")


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


@pytest.mark.postgres
@pytest.mark.timeout(300)
def test_two_serve_processes_refreshing_one_link_at_once_make_one_refresh(
    sample: SampleGitLab,
    gitlab_sim: GitLabSimulator,
    slack: SlackStandIn,
    postgres_url: str,
    tmp_path: Path,
) -> None:
    oauth_app(sample)
    upgrade_database(postgres_url)
    env = serve_env(
        DATABASE_URL=postgres_url,
        MIRRORBOT_SECRET_KEY=generate_key(),
        GITLAB_URL=gitlab_sim.url,
        GITLAB_OAUTH_CLIENT_ID=CLIENT_ID,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=slack.api_url,
    )
    replicas = [ServeProcess(env, tmp_path / f"replica-{n}.log") for n in range(2)]
    try:
        for replica in replicas:
            replica.wait_healthy()
        agents = [SlackUserAgent(r.url, slack, TEAM_ID) for r in replicas]

        def responses(containing: str) -> list[dict[str, Any]]:
            return [c.body for c in slack.of("response_url") if containing in json.dumps(c.body)]

        agents[0].command("login")
        started = slack.wait_for(lambda: responses("Link your GitLab account"), 30)
        code = started[0]["blocks"][0]["text"]["text"].split("*`", 1)[1].split("`*", 1)[0]
        sample.world.approve_device(code, sample.alice)
        slack.wait_for(lambda: responses("Linked as"), 30)

        sample.world.expire_oauth_access_tokens()
        held = gitlab_sim.inject(Fault("hold", path="^/oauth/token$", method="POST", times=None))
        for agent in agents:
            agent.command("list group/app")
        # One process's refresh is held at GitLab with the row locked; the other waits.
        slack.wait_for(lambda: waiting_locks(postgres_url) >= 1, 30)
        held.release()
        slack.wait_for(lambda: len(responses("push mirror")) == 2, 30)
        presented = sample.world.oauth.refresh_presented
        assert sum(presented.values()) == 1
        made = {
            pid
            for pid in (r.pid for r in replicas)
            for request in gitlab_sim.requests.matching("GET", "/remote_mirrors")
            if f":{pid}:" in (request.user_agent or "")
        }
        assert len(made) == 2  # each process ran its own command
    finally:
        for replica in replicas:
            replica.stop()


def waiting_locks(database_url: str) -> int:
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as connection:
            return int(
                connection.execute(text("SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar()
                or 0
            )
    finally:
        engine.dispose()
