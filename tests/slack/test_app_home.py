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
