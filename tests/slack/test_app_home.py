"""The App Home tab: link status and watched mirrors' health, failing first, with buttons."""

import json

from bot.commands.actions import MirrorActions, MirrorRef
from tests.slack.conftest import Harness


def open_home(h: Harness, user: str = "UALICE") -> dict:
    before = len(h.posts("views.publish"))
    assert (
        h.agent.event(
            {"type": "app_home_opened", "user": user, "channel": "D1", "tab": "home"}
        ).status_code
        == 200
    )
    published = h.wait(lambda: h.posts("views.publish")[before:])
    body = published[-1].body
    assert body["user_id"] == user
    view = body["view"]
    return json.loads(view) if isinstance(view, str) else view


def test_home_shows_the_link_and_failing_mirrors_first(linked: Harness):
    linked.slack.memberships["UALICE"] = ["CALERTS"]
    linked.command("watch group/app", channel="CALERTS")
    linked.wait_response("now gets alerts")
    linked.sample.world.fail_now(linked.sample.ssh_mirror, "Host key verification failed.")
    linked.command("status --refresh", channel="CALERTS")
    linked.wait_response("just refreshed")
    view = open_home(linked)
    text = json.dumps(view)
    assert view["type"] == "home"
    assert "Linked to GitLab user *alice*" in text
    rows = [b for b in view["blocks"] if b["type"] == "actions"]
    assert rows[0]["block_id"].endswith(f"push:{linked.sample.ssh_mirror.id}")  # failing first
    assert "2 mirrors of 1 project" in text and "1 failing" in text
    assert len(view["blocks"]) <= 100


def test_home_of_an_unlinked_user_says_how_to_link(harness: Harness):
    view = open_home(harness, "UNEW")
    assert "/mirror login" in json.dumps(view)


def test_a_button_in_the_home_tab_acts_and_refreshes_the_tab(linked: Harness):
    linked.slack.memberships["UALICE"] = ["CALERTS"]
    linked.command("watch group/app", channel="CALERTS")
    linked.wait_response("now gets alerts")
    mirror = linked.sample.https_mirror
    mirror.enabled = False
    published = len(linked.posts("views.publish"))
    payload_value = MirrorRef(project_id=linked.sample.app.id, mirror_id=mirror.id).dump()
    response = linked.agent.click(MirrorActions.ENABLE, payload_value, channel="")
    assert response.status_code == 200
    linked.wait(lambda: mirror.enabled)
    linked.wait(lambda: len(linked.posts("views.publish")) > published)


def test_home_shows_the_fleet_of_each_channel_failing_first_with_counts(linked: Harness):
    world = linked.sample.world
    world.add_group("platform", {linked.sample.alice: 40})
    tool = world.add_project("platform/tool")
    broken = world.add_push_mirror(tool, "https://a:b@github.example.org/tool.git", enabled=True)
    world.fail_now(broken, "fatal: Authentication failed")
    linked.slack.memberships["UALICE"] = ["CQUIET", "CFLEET"]
    linked.command("watch group/app", channel="CQUIET")
    linked.wait_response("now gets alerts")
    linked.command("watch platform/", channel="CFLEET")
    linked.wait_response("group platform/")
    for channel in ("CQUIET", "CFLEET"):
        linked.command("status --refresh", channel=channel)
    linked.wait(lambda: linked.observation(tool.id, f"push:{broken.id}"))
    linked.wait(
        lambda: linked.observation(linked.sample.app.id, f"push:{linked.sample.ssh_mirror.id}")
    )
    view = open_home(linked)
    [fleet] = [b for b in view["blocks"] if "*By channel*" in json.dumps(b)]
    lines = fleet["text"]["text"].splitlines()[1:]
    assert "CFLEET" in lines[0] and "*1 failing*" in lines[0] and "groups platform/" in lines[0]
    assert (
        "CQUIET" in lines[1] and "*0 failing*" in lines[1] and "2 mirrors in 1 projects" in lines[1]
    )
    assert (
        "3 mirrors of 2 projects your channels watch, 1 failing, 0 stale, 0 disabled"
        in json.dumps(view)
    )
