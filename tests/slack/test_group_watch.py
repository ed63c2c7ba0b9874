"""Group subscriptions: every project of a group and its subgroups, now and later."""

import json

import pytest
from sqlalchemy import select

from bot.commands.parse import parse_command
from bot.simulator.faults import Fault
from bot.simulator.world import MAINTAINER
from bot.store.crypto import generate_key
from bot.store.models import GroupSubscription, Subscription
from bot.workers import WorkerTiming
from tests.slack.conftest import Harness, start_harness
from tests.slack.test_alerts_e2e import AUTH_ERROR

GROUP_TIMING = WorkerTiming(discovery_every=0.3, checks_every=0.3)


@pytest.fixture
def harness(sample, gitlab_sim, slack, sqlite_url):
    world, alice = sample.world, sample.alice
    world.add_group("platform", {alice: MAINTAINER})
    world.add_group("platform/tools")
    for path in ("platform/api", "platform/tools/cli"):
        project = world.add_project(path)
        world.add_push_mirror(
            project, f"https://bot:tok3n@github.example.org/{path}.git", enabled=True
        )
    world.add_project("platform/tools/hidden", {})  # alice maintains it through the group too
    world.add_project("elsewhere/other", {alice: MAINTAINER})
    h = start_harness(
        sample,
        gitlab_sim,
        slack,
        sqlite_url,
        generate_key(),
        timing=GROUP_TIMING,
        mirrorbot_poll_interval=1,
    )
    yield h
    h.server.stop()


def alerts_in(h: Harness, channel: str, path: str) -> list[dict]:
    return [
        c.body
        for c in h.posts()
        if c.body.get("channel") == channel
        and "Mirror failing" in c.body.get("text", "")
        and path in c.body.get("text", "")
    ]


def test_watching_a_group_subscribes_every_project_of_it_and_its_subgroups(linked: Harness):
    linked.command("watch platform/", channel="CALERTS")
    reply = linked.wait_response("now gets alerts")
    assert "group platform/" in json.dumps(reply) and "3 projects" in json.dumps(reply)
    paths = {s.project_path for s in linked.read(select(Subscription))}
    assert paths == {"platform/api", "platform/tools/cli", "platform/tools/hidden"}
    linked.command("watching", channel="CALERTS")
    linked.wait_response("group *platform/* — 3 projects")


def test_a_group_watch_alerts_for_a_project_added_after_the_watch(linked: Harness):
    world = linked.sample.world
    linked.command("watch --group platform", channel="CALERTS")
    linked.wait_response("now gets alerts")
    late = world.add_project("platform/tools/late")
    mirror = world.add_push_mirror(late, "https://x:y@github.example.org/late.git", enabled=True)
    world.fail_now(mirror, AUTH_ERROR)
    alert = linked.wait_post("platform/tools/late", timeout=20)
    assert alert["channel"] == "CALERTS" and "Mirror failing" in alert["text"]
    assert "x:y@" not in json.dumps(alert)


def test_a_project_watched_directly_and_through_its_group_alerts_once(linked: Harness):
    world = linked.sample.world
    linked.command("watch platform/api", channel="CALERTS")
    linked.wait_response("now gets alerts")
    linked.command("watch platform/", channel="CALERTS")
    linked.wait_response("group platform/")
    api = world._by_path["platform/api"]
    [mirror] = api.push_mirrors.values()
    world.fail_now(mirror, AUTH_ERROR)
    linked.wait_post("platform/api", timeout=20)
    linked.settle()
    linked.one_more_pass("monitor", timeout=20)
    linked.settle()
    assert len(alerts_in(linked, "CALERTS", "platform/api")) == 1
    # Unwatching the group keeps the direct subscription.
    linked.command("unwatch platform/", channel="CALERTS")
    linked.wait_response("no longer watches the group platform/")
    remaining = {s.project_path for s in linked.read(select(Subscription))}
    assert remaining == {"platform/api"}
    assert linked.count(GroupSubscription) == 0


def test_a_group_the_caller_cannot_see_is_refused(linked: Harness):
    linked.command("watch platform/", channel="CALERTS", user="UDAVE")
    linked.wait_response("group platform was not found")
    assert linked.count(GroupSubscription) == 0


@pytest.mark.parametrize(
    ("text", "group", "channel"),
    [
        ("watch platform/", "platform", None),
        ("watch platform/tools/ #ops", "platform/tools", "ops"),
        ("watch --group platform/tools <#C0123456|ops>", "platform/tools", None),
        ("watch <https://gitlab.example.com/groups/platform/>", "platform", None),
        ("unwatch platform/", "platform", None),
    ],
)
def test_a_trailing_slash_or_group_flag_names_a_group(text, group, channel):
    command = parse_command(text, "https://gitlab.example.com")
    assert command.group is not None and command.group.value == group
    assert command.project is None
    if channel:
        assert command.channel is not None and command.channel.name == channel


def notices_in(h: Harness, channel: str, words: str) -> list[dict]:
    return [c.body for c in h.posts() if c.body.get("channel") == channel and words in str(c.body)]


def test_a_group_its_watcher_can_no_longer_list_is_told_once_and_again_when_it_works(
    linked: Harness,
):
    """bob watches the group; his link goes: the channel hears it once (naming him and
    what to do), not once per pass; a passing GitLab error tells nobody; once another
    Maintainer takes the watch over, the channel hears that it works again."""
    world = linked.sample.world
    [platform] = [g for g in world.groups.values() if g.path == "platform"]
    platform.members[linked.sample.bob.id] = MAINTAINER
    linked.command("watch platform/", channel="CALERTS", user="UBOB")
    linked.wait_response("now gets alerts")
    linked.command("users unlink <@UBOB|bob>", user="UADMIN")
    linked.wait_response("unlinked")
    unlisted = linked.wait_post("can no longer list the projects", timeout=10)
    assert unlisted["channel"] == "CALERTS"
    assert "<@UBOB>" in str(unlisted) and "/mirror watch platform/" in str(unlisted)
    linked.one_more_pass("discovery", timeout=10)
    linked.one_more_pass("discovery", timeout=10)
    linked.settle()
    assert len(notices_in(linked, "CALERTS", "can no longer list")) == 1
    # alice takes it over: it works again, and the channel is told so, once.
    linked.command("watch platform/", channel="CALERTS")
    linked.wait_response("now gets alerts")
    linked.wait_post("I can list the projects of *platform/* again")
    # GitLab down for a pass is nobody's to fix: only the log hears of it.
    fault = linked.gitlab.inject(Fault("status", status=502, path=r"/groups/.*/projects", times=3))
    linked.wait(lambda: fault.hits >= 1, timeout=10)
    linked.one_more_pass("discovery", timeout=10)
    linked.settle()
    assert len(notices_in(linked, "CALERTS", "can no longer list")) == 1
    assert len(notices_in(linked, "CALERTS", "I can list the projects")) == 1
