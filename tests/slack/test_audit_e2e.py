"""Who changed who may act and who hears about it: links, unlinks, subscriptions and
mutes done through the real app are in `mirrorbot audit`, with plain ids."""

import json
import os
import subprocess
import sys

import pytest

from bot.commands.actions import AlertActions, MirrorRef
from bot.slack.ids import Fields, Views
from bot.store.crypto import generate_key
from tests.conftest import BOB_TOKEN
from tests.slack.conftest import Harness, start_harness


@pytest.fixture
def harness(sample, gitlab_sim, slack, database_url):
    """The audit log is written in the change's own transaction: SQLite and PostgreSQL."""
    h = start_harness(sample, gitlab_sim, slack, database_url, generate_key())
    yield h
    h.server.stop()


def audit_lines(h: Harness) -> list[dict]:
    """`mirrorbot audit` as an operator runs it, on the app's database."""
    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SLACK_", "GITLAB_", "MIRRORBOT_"))
        },
        "DATABASE_URL": h.settings.database_url,
    }
    result = subprocess.run(
        [sys.executable, "-m", "bot", "audit"], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def only(lines: list[dict], operation: str) -> dict:
    [line] = [line for line in lines if line["operation"] == operation]
    return line


def assert_plain_ids(lines: list[dict]) -> None:
    for line in lines:
        for key in ("actor", "subject", "channel", "approver"):
            assert "<" not in str(line[key]) and "@" not in str(line[key]), line


def test_login_and_logout_are_audited(harness: Harness):
    harness.command("login", user="UNEW", channel="CLOGIN")
    body = harness.wait_post(Views.LOGIN, method="views.open")
    view = json.loads(body["view"]) if isinstance(body["view"], str) else body["view"]
    harness.agent.submit(view, {Fields.TOKEN: {Fields.TOKEN: {"value": BOB_TOKEN}}}, user="UNEW")
    harness.wait_post("Linked to GitLab user *bob*", method="views.update")
    harness.command("logout", user="UNEW", channel="COTHER")
    harness.wait_response("unlinked")
    lines = audit_lines(harness)
    link = only(lines, "link")
    assert (link["actor"], link["subject"], link["channel"]) == ("UNEW", "UNEW", "CLOGIN")
    assert link["event"] == "executed" and "bob" in link["result"]
    assert BOB_TOKEN not in json.dumps(lines)
    unlink = only(lines, "unlink")
    assert (unlink["actor"], unlink["subject"], unlink["channel"]) == ("UNEW", "UNEW", "COTHER")
    assert_plain_ids(lines)


def test_an_admin_unlinking_someone_is_audited_as_the_admin(linked: Harness):
    linked.command("users unlink <@UBOB|bob>", user="UADMIN", channel="CADMIN")
    linked.wait_response("unlinked")
    unlink = only(audit_lines(linked), "unlink")
    assert (unlink["actor"], unlink["subject"], unlink["channel"]) == ("UADMIN", "UBOB", "CADMIN")
    assert_plain_ids([unlink])


def test_watch_mute_unmute_and_unwatch_are_audited(linked: Harness):
    app, mirror = linked.sample.app, linked.sample.https_mirror
    linked.command("watch group/app", channel="CALERTS")
    linked.wait_response("now gets alerts")
    linked.click(
        AlertActions.MUTE,
        MirrorRef(project_id=app.id, mirror_id=mirror.id).dump(),
        user="UBOB",
        channel="CALERTS",
    )
    linked.wait_post("muted alerts for mirror")
    linked.command(f"unmute group/app {mirror.id}", user="UDAVE", channel="CALERTS")
    linked.wait_response("back on")
    linked.command("unwatch group/app", user="UBOB", channel="CALERTS")
    linked.wait_response("no longer watches")
    lines = [line for line in audit_lines(linked) if line["operation"] != "link"]  # the fixture's
    assert [line["operation"] for line in lines] == ["watch", "mute", "unmute", "unwatch"]
    who = {line["operation"]: line["actor"] for line in lines}
    assert who == {"watch": "UALICE", "mute": "UBOB", "unmute": "UDAVE", "unwatch": "UBOB"}
    for line in lines:
        assert (line["project"], line["channel"], line["event"]) == (
            "group/app",
            "CALERTS",
            "executed",
        )
    assert only(lines, "mute")["mirror_id"] == mirror.id
    assert only(lines, "unmute")["mirror_id"] == mirror.id
    assert_plain_ids(lines)


def test_what_changes_nothing_is_not_audited(linked: Harness):
    linked.command("unwatch group/app", channel="CALERTS")
    linked.wait_response("was not watching")
    linked.command("unmute group/app 12", channel="CALERTS")
    linked.wait_response("was not muted")
    assert [line["operation"] for line in audit_lines(linked)] == ["link"] * 3  # the fixture's
