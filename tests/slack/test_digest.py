"""The daily digest: once a day at its time, through the outbox, across replicas."""

import json
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.store.crypto import generate_key
from bot.store.models import Digest
from tests.conftest import ALICE_TOKEN
from tests.fakes.bot_server import FAST_WORKERS
from tests.slack.conftest import Harness, start_harness
from tests.slack.test_alerts_e2e import AUTH_ERROR


class TestClock:
    """Stands still at tomorrow's 08:59 UTC until `jump` moves it."""

    __test__ = False

    def __init__(self) -> None:
        tomorrow = datetime.now(UTC).date() + timedelta(days=1)
        self._now = datetime(tomorrow.year, tomorrow.month, tomorrow.day, 8, 59, tzinfo=UTC)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def jump(self, by: timedelta) -> None:
        with self._lock:
            self._now += by


def digests(h: Harness, channel: str = "CALERTS") -> list[dict]:
    return [
        c.body
        for c in h.posts()
        if c.body.get("channel") == channel and "Mirror digest" in c.body.get("text", "")
    ]


def start(sample, gitlab_sim, slack, database_url, key, clock) -> Harness:
    timing = replace(FAST_WORKERS, digest_every=0.2, clock=clock)
    return start_harness(
        sample, gitlab_sim, slack, database_url, key, timing=timing, mirrorbot_poll_interval=1
    )


def failing_and_watched(h: Harness) -> None:
    h.link("UALICE", ALICE_TOKEN)
    h.sample.world.fail_now(h.sample.https_mirror, AUTH_ERROR)
    h.command("watch group/app", channel="CALERTS")
    h.wait_response("now gets alerts")
    h.wait_post("Mirror failing", timeout=10)  # observed: the digest has something to say


def test_the_digest_posts_once_at_its_time(sample, gitlab_sim, slack, sqlite_url):
    clock = TestClock()
    h = start(sample, gitlab_sim, slack, sqlite_url, generate_key(), clock)
    try:
        failing_and_watched(h)
        h.command("digest 09:00 UTC", channel="CALERTS")
        h.wait_response("every day at 09:00 (UTC)")
        h.one_more_pass("digest")
        h.settle()
        assert digests(h) == []  # 08:59 by the test clock: not yet
        clock.jump(timedelta(minutes=1))
        digest = h.wait(lambda: digests(h) or None, timeout=10)[0]
        text = json.dumps(digest)
        assert "1 failing" in text and "group/app" in text and "Authentication failed" in text
        for _ in range(3):  # later passes the same day add nothing
            h.one_more_pass("digest")
        h.settle()
        assert len(digests(h)) == 1
        clock.jump(timedelta(days=1))  # the next day: one more
        h.wait(lambda: len(digests(h)) == 2, timeout=10)
        h.one_more_pass("digest")
        h.settle()
        assert len(digests(h)) == 2
    finally:
        h.server.stop()


def test_the_digest_posts_once_across_two_replicas(sample, gitlab_sim, slack, database_url):
    clock, key = TestClock(), generate_key()
    first = start(sample, gitlab_sim, slack, database_url, key, clock)
    second = start(sample, gitlab_sim, slack, database_url, key, clock)
    try:
        failing_and_watched(first)
        first.command("digest 09:00", channel="CALERTS")
        first.wait_response("every day at 09:00 (UTC)")
        clock.jump(timedelta(minutes=2))
        first.wait(lambda: digests(first) or None, timeout=10)
        for replica in (first, second):  # both have made passes after the digest's time
            replica.one_more_pass("digest")
            replica.one_more_pass("digest")
        first.settle()
        second.settle()
        assert len(digests(first)) == 1
    finally:
        first.server.stop()
        second.server.stop()


def test_nothing_is_posted_when_all_is_well_unless_always(sample, gitlab_sim, slack, sqlite_url):
    clock = TestClock()
    h = start(sample, gitlab_sim, slack, sqlite_url, generate_key(), clock)
    try:
        h.link("UALICE", ALICE_TOKEN)
        now = datetime.now(UTC)
        for mirror in (sample.https_mirror, sample.ssh_mirror):
            sample.world.succeed_at(mirror, now)
        h.command("watch group/app", channel="CALERTS")
        h.wait_response("now gets alerts")
        h.command("watch group/app", channel="CQUIET")
        h.wait_response("now gets alerts")
        h.wait(lambda: h.observation(sample.app.id, f"push:{sample.https_mirror.id}"))
        h.command("digest 09:00 UTC", channel="CQUIET")
        h.wait_response("when something needs attention")
        h.command("digest 09:00 UTC always", channel="CALERTS")
        h.wait_response("even when all is well")
        clock.jump(timedelta(minutes=2))
        digest = h.wait(lambda: digests(h) or None, timeout=10)[0]
        assert "All is well" in json.dumps(digest)
        # The quiet channel's pass has run too: its day is marked done, with no message.
        h.wait(lambda: all(d.last_sent_on is not None for d in h.read(select(Digest))))
        h.settle()
        assert digests(h, "CQUIET") == [] and len(digests(h)) == 1
    finally:
        h.server.stop()


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("digest 25:00", "not a time of day"),
        ("digest 09:00 Mars/Olympus", "not a time zone"),
        ("digest", "has no daily digest"),
        ("digest off", "had no daily digest"),
    ],
)
def test_digest_commands_explain_bad_input(linked: Harness, text, answer):
    linked.command(text, channel="CALERTS")
    linked.wait_response(answer)
