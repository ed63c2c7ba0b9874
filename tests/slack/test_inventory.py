"""`/mirror inventory GROUP`: a summary, then every mirror of a nested group as a CSV file."""

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest

from bot.simulator.world import MAINTAINER
from bot.store.crypto import generate_key
from bot.workers import WorkerTiming
from tests.slack.conftest import Harness, start_harness
from tests.slack.test_alerts_e2e import AUTH_ERROR


@pytest.fixture
def harness(sample, gitlab_sim, slack, sqlite_url):
    world, alice = sample.world, sample.alice
    world.add_group("platform", {alice: MAINTAINER})
    world.add_group("platform/tools")
    world.add_group("platform/tools/deep")
    now = datetime.now(UTC)
    api = world.add_project("platform/api")
    ok = world.add_push_mirror(
        api, "https://bot:s3cret-1@github.example.org/acme/api.git", enabled=True
    )
    world.succeed_at(ok, now - timedelta(hours=1))
    cli = world.add_project("platform/tools/cli")
    broken = world.add_push_mirror(
        cli, "https://bot:s3cret-2@github.example.org/acme/cli.git", enabled=True
    )
    world.succeed_at(broken, now - timedelta(days=3))
    world.fail_now(broken, AUTH_ERROR)
    old = world.add_push_mirror(
        cli, "ssh://git@ssh.example.org/acme/cli.git", enabled=True, auth_method="ssh_public_key"
    )
    world.succeed_at(old, now - timedelta(days=30))  # stale
    deep = world.add_project("platform/tools/deep/lib")
    world.add_push_mirror(deep, "https://u:s3cret-3@gitlab.example.org/lib.git", enabled=False)
    pulled = world.add_project("platform/tools/deep/pulled")
    world.set_pull_mirror(pulled, "https://puller:s3cret-4@up.example.org/pulled.git")
    world.add_project("platform/nomirrors")
    h = start_harness(
        sample,
        gitlab_sim,
        slack,
        sqlite_url,
        generate_key(),
        timing=WorkerTiming(discovery_every=0.3),
        mirrorbot_poll_interval=1,
    )
    yield h
    h.server.stop()


def uploaded_csv(h: Harness) -> list[dict[str, str]]:
    [complete] = h.wait(lambda: h.posts("files.completeUploadExternal") or None)
    [file] = json.loads(complete.body["files"])
    assert complete.body["channel_id"] == "DUALICE"  # the caller's own DM with the app
    raw = h.slack.uploads[file["id"]].decode()
    return list(csv.DictReader(io.StringIO(raw)))


def test_the_inventory_csv_lists_every_mirror_of_a_nested_group_scrubbed(linked: Harness):
    linked.command("inventory platform", channel="CALERTS")
    summary = linked.wait_response("Inventory of platform/")
    first = linked.responses()[0]
    assert "Taking the inventory of platform/" in first["text"]  # said before the reads
    text = json.dumps(summary)
    assert "5 mirrors in 5 projects" in text
    assert "*1 failing*" in text and "1 stale" in text and "1 disabled" in text
    assert "Read from GitLab just now" in text
    rows = uploaded_csv(linked)
    assert sorted((r["project"], r["direction"]) for r in rows) == [
        ("platform/api", "push"),
        ("platform/tools/cli", "push"),
        ("platform/tools/cli", "push"),
        ("platform/tools/deep/lib", "push"),
        ("platform/tools/deep/pulled", "pull"),
    ]
    assert rows[0]["project"] == "platform/tools/cli" and rows[0]["status"] == "failing"
    assert rows[0]["likely_cause"] == "Authentication failed"
    [ssh] = [r for r in rows if r["host"] == "ssh.example.org"]
    assert ssh["auth_method"] == "ssh_public_key" and ssh["path"] == "/acme/cli.git"
    everything = json.dumps(rows) + text
    assert "s3cret" not in everything and "puller" not in everything
    assert "https://*****:*****@github.example.org/acme/api.git" in everything


def test_a_watched_group_is_answered_from_the_observations(linked: Harness):
    linked.command("watch platform/", channel="CALERTS")
    linked.wait_response("now gets alerts")
    linked.wait_post("Mirror failing", timeout=20)  # the monitor has observed the group
    linked.slack.clear()
    linked.command("inventory platform/", channel="CALERTS")
    summary = linked.wait_response("Inventory of platform/")
    assert "from the monitor's observations, as of" in json.dumps(summary).lower()
    rows = uploaded_csv(linked)
    assert len(rows) == 5 and "s3cret" not in json.dumps(rows)


def test_an_inventory_of_a_group_you_cannot_see_says_so(linked: Harness):
    linked.command("inventory platform", channel="CALERTS", user="UDAVE")
    linked.wait_response("group platform was not found")
    assert linked.posts("files.completeUploadExternal") == []
