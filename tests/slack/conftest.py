"""An end-to-end harness: the app on 127.0.0.1, the GitLab simulator and the Slack stand-in."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from bot.config import Settings, load_settings
from bot.domain.accounts import Accounts, SlackUser
from bot.gitlab.client import create_http_client
from bot.simulator import GitLabSimulator
from bot.store.crypto import TokenCipher, generate_key
from bot.store.db import create_engine, session_factory, sync_url
from bot.store.models import MirrorState, OutboxMessage, ScheduledCheck, WebhookEvent
from bot.workers import WorkerTiming
from tests.conftest import (
    ALICE_TOKEN,
    BOB_TOKEN,
    DAVE_TOKEN,
    FAST_RETRY,
    SampleGitLab,
    migrate,
)
from tests.fakes.bot_server import SIGNING_SECRET, BotServer, SlackUserAgent
from tests.fakes.slack import BOT_TOKEN, TEAM_ID, SlackCall, SlackStandIn


def bot_settings(
    database_url: str, gitlab_url: str, slack: SlackStandIn, key: str, **extra: Any
) -> Settings:
    return load_settings(
        _env_file=None,
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=slack.api_url,
        gitlab_url=gitlab_url,
        database_url=database_url,
        mirrorbot_secret_key=key,
        mirrorbot_admins="UADMIN",
        **{"gitlab_service_token": ALICE_TOKEN, **extra},
    )


@dataclass
class Harness:
    sample: SampleGitLab
    gitlab: GitLabSimulator
    slack: SlackStandIn
    server: BotServer
    agent: SlackUserAgent
    settings: Settings

    def link(self, user: str, token: str) -> None:
        async def link() -> None:
            engine = create_engine(self.settings.database_url)
            http = create_http_client(self.settings.gitlab_url)
            accounts = Accounts(
                session_factory(engine), TokenCipher(self.settings.secret_keys), http, FAST_RETRY
            )
            try:
                await accounts.link(SlackUser(TEAM_ID, user), token, linked_by="test")
            finally:
                await http.aclose()
                await engine.dispose()

        asyncio.run(link())

    def command(self, text: str, **kwargs: Any) -> Any:
        response = self.agent.command(text, **kwargs)
        assert response.status_code == 200, response.text
        return response

    def click(self, action_id: str, value: str, **kwargs: Any) -> Any:
        response = self.agent.click(action_id, value, **kwargs)
        assert response.status_code == 200, response.text
        return response

    # --- what reached Slack -------------------------------------------------------------

    def responses(self) -> list[dict[str, Any]]:
        return [c.body for c in self.slack.of("response_url")]

    def wait_response(self, contains: str, timeout: float = 5.0) -> dict[str, Any]:
        return self.slack.wait_for(
            lambda: next(
                (
                    body
                    for body in self.responses()
                    if contains in json.dumps(body, ensure_ascii=False)
                ),
                None,
            ),
            timeout,
        )

    def posts(self, method: str = "chat.postMessage") -> list[SlackCall]:
        return self.slack.of(method)

    def wait_post(
        self, contains: str, method: str = "chat.postMessage", timeout: float = 5.0
    ) -> dict[str, Any]:
        return self.slack.wait_for(
            lambda: next(
                (
                    c.body
                    for c in self.posts(method)
                    if contains in json.dumps(c.body, ensure_ascii=False)
                ),
                None,
            ),
            timeout,
        )

    def wait(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
        return self.slack.wait_for(predicate, timeout)

    # --- what the bot did with it: its database and its /metrics -----------------------

    def read(self, statement: Any) -> list[Any]:
        """Rows of the bot's database, read as an operator would (a connection of our own)."""
        engine = create_sync_engine(sync_url(self.settings.database_url), poolclass=NullPool)
        try:
            with Session(engine) as session:
                return list(session.scalars(statement).all())
        finally:
            engine.dispose()

    def count(self, model: Any, *where: Any) -> int:
        return int(self.read(select(func.count()).select_from(model).where(*where))[0])

    def observation(self, project_id: int, mirror_key: str) -> MirrorState | None:
        """The monitor's latest observation of one mirror ("push:<id>" or "pull")."""
        found = self.read(
            select(MirrorState).where(
                MirrorState.project_id == project_id, MirrorState.mirror_key == mirror_key
            )
        )
        return found[0] if found else None

    def metric(self, name: str, **labels: str) -> float:
        """One sample of the server's /metrics (0 if it has not been counted yet)."""
        text = httpx.get(f"{self.server.url}/metrics").text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    return float(sample.value)
        return 0.0

    def passes(self, loop: str) -> float:
        return self.metric("mirrorbot_background_passes_total", loop=loop)

    def one_more_pass(self, loop: str, timeout: float = 10.0) -> None:
        """Wait until a pass of `loop` that started after this call has finished: whatever
        the loop was doing when we asked, it has done."""
        before = self.passes(loop)
        # A pass in flight finishes first, then one starts after us: two increments.
        self.wait(lambda: self.passes(loop) >= before + 2, timeout)

    def settle(self, timeout: float = 15.0) -> None:
        """Wait until the bot has done all it was going to do with what it received: every
        stored webhook processed, every scheduled check run, nothing left to send to Slack.
        A test asserting that something did *not* happen calls this first."""
        self.wait(
            lambda: (
                self.count(WebhookEvent, WebhookEvent.processed_at.is_(None)) == 0
                and self.count(ScheduledCheck) == 0
            ),
            timeout,
        )
        self.one_more_pass("checks", timeout)  # the check taken last has been applied
        self.wait(
            lambda: self.count(OutboxMessage, OutboxMessage.status == "pending") == 0, timeout
        )
        self.one_more_pass("outbox", timeout)


def start_harness(
    sample: SampleGitLab,
    gitlab_sim: GitLabSimulator,
    slack: SlackStandIn,
    database_url: str,
    key: str,
    *,
    timing: WorkerTiming | None = None,
    **extra: Any,
) -> Harness:
    settings = bot_settings(database_url, gitlab_sim.url, slack, key, **extra)
    migrate(database_url)
    server = BotServer(settings, retry=FAST_RETRY, timing=timing).start()
    agent = SlackUserAgent(server.url, slack, TEAM_ID)
    return Harness(sample, gitlab_sim, slack, server, agent, settings)


@pytest.fixture
def harness(
    sample: SampleGitLab, gitlab_sim: GitLabSimulator, slack: SlackStandIn, sqlite_url: str
) -> Iterator[Harness]:
    h = start_harness(sample, gitlab_sim, slack, sqlite_url, generate_key())
    yield h
    h.server.stop()


WEBHOOK_SECRET = "hook-secret"


@pytest.fixture
def webhook_harness(sample, gitlab_sim, slack, sqlite_url) -> Iterator[Harness]:
    """The app with the webhook secret set and a monitor interval of an hour, so that the
    webhooks a test sends are what trigger the checks."""
    h = start_harness(
        sample,
        gitlab_sim,
        slack,
        sqlite_url,
        generate_key(),
        gitlab_webhook_secret=WEBHOOK_SECRET,
        mirrorbot_poll_interval=3600,
    )
    yield h
    h.server.stop()


@pytest.fixture
def linked(harness: Harness) -> Harness:
    """alice and bob (Maintainers) and dave (Developer) have linked their accounts."""
    harness.link("UALICE", ALICE_TOKEN)
    harness.link("UBOB", BOB_TOKEN)
    harness.link("UDAVE", DAVE_TOKEN)
    return harness
