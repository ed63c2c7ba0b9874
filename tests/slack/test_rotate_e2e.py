"""`/mirror rotate` end to end: a new mirror first, the old one deleted only after the new
one synced; a failing new one deleted and the old kept; SSH switched on *Key installed*;
restarts resumed; day-old requests cleaned up; no password anywhere."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import select, update
from sqlalchemy.pool import NullPool

from bot.commands.actions import (
    ApprovalActions,
    ApprovalRef,
    MirrorRef,
    RotationActions,
    RotationRef,
)
from bot.simulator.faults import Fault
from bot.store.crypto import generate_key
from bot.store.db import sync_url
from bot.store.models import AuditEntry, RotationRow, utcnow
from tests.conftest import ALICE_TOKEN, BOB_TOKEN
from tests.slack.conftest import Harness, start_harness
from tests.slack.test_buttons_and_forms import opened_view

NEW_PASSWORD = "n3w-r0tated-t0ken-xyz"
HOST = "github.example.org"


def rotate_form(h: Harness, project: str, mirror_id: int, **where: Any) -> dict[str, Any]:
    h.command(f"rotate {project} {mirror_id}", **where)
    return opened_view(h, "view-rotate", method="views.update")


def credentials(username: str, password: str) -> dict[str, Any]:
    return {
        "new_username": {"new_username": {"type": "plain_text_input", "value": username}},
        "new_password": {"new_password": {"type": "plain_text_input", "value": password}},
    }


def rotations(h: Harness) -> list[RotationRow]:
    return h.read(select(RotationRow))


def wait_state(h: Harness, state: str, timeout: float = 10.0) -> RotationRow:
    return h.wait(lambda: next((r for r in rotations(h) if r.state == state), None), timeout)


def test_a_password_rotation_makes_the_new_mirror_with_every_setting_before_deleting_the_old(
    linked: Harness,
):
    world, old = linked.sample.world, linked.sample.https_mirror
    with world.lock:
        old.keep_divergent_refs = True
        old.mirror_branch_regex = "^release/"
    old_id, before = old.id, set(linked.sample.app.push_mirrors)
    # Hold the old mirror's DELETE: while it waits, look at what the new mirror has done.
    held = linked.gitlab.faults.add(
        Fault("hold", method="DELETE", path=f"/remote_mirrors/{old_id}$")
    )
    view = rotate_form(linked, "group/app", old_id, channel="COPS")
    assert linked.agent.submit(view, credentials("rotator", NEW_PASSWORD)).text == ""
    linked.wait(lambda: held.hits == 1)
    new = next(m for i, m in linked.sample.app.push_mirrors.items() if i not in before)
    assert new.update_status == "finished" and new.last_successful_update_at is not None
    assert old_id in linked.sample.app.push_mirrors  # still there until the new one synced
    held.release()

    done = linked.wait_post("*finished*", method="chat.update")
    assert done["channel"] == "COPS"
    assert f"push mirror {new.id} synced" in json.dumps(done)
    assert f"replaces {old_id}, which is deleted" in json.dumps(done)
    assert old_id not in linked.sample.app.push_mirrors
    assert new.url == f"https://rotator:{NEW_PASSWORD}@{HOST}/acme/app.git"
    kept = ("enabled", "auth_method", "keep_divergent_refs", "mirror_branch_regex")
    assert {k: getattr(new, k) for k in kept} == {
        "enabled": True,
        "auth_method": "password",
        "keep_divergent_refs": True,
        "mirror_branch_regex": "^release/",
    }
    order = [
        (r.method, r.path.rsplit("/remote_mirrors", 1)[-1])
        for r in linked.gitlab.requests.matching()
        if "/remote_mirrors" in r.path and r.method in ("POST", "DELETE")
    ]
    assert order == [("POST", ""), ("POST", f"/{new.id}/sync"), ("DELETE", f"/{old_id}")]


def test_a_rotation_whose_new_credentials_fail_leaves_exactly_the_old_mirror(linked: Harness):
    linked.sample.world.reject_credentials(HOST, "still-expired")
    old = linked.sample.https_mirror
    before = dict(linked.sample.app.push_mirrors)
    view = rotate_form(linked, "group/app", old.id)
    linked.agent.submit(view, credentials("rotator", "still-expired"))
    failed = json.dumps(linked.wait_post("*failed*", method="chat.update"))
    assert "the new token was rejected too" in failed
    assert f"push mirror {old.id} is kept" in failed
    assert linked.sample.app.push_mirrors == before
    assert old.url == "https://mirror-bot:s3cr3t-pass@github.example.org/acme/app.git"
    assert [r.state for r in rotations(linked)] == ["failed"]


def test_an_ssh_rotation_shows_the_new_key_and_keeps_the_old_mirror_until_key_installed(
    linked: Harness,
):
    old, before = linked.sample.ssh_mirror, set(linked.sample.app.push_mirrors)
    view = rotate_form(linked, "group/app", old.id)
    assert "new_password" not in json.dumps(view)  # nothing to type
    linked.agent.submit(view, {})
    waiting = linked.wait_post("Key installed", method="chat.update")
    new = next(m for i, m in linked.sample.app.push_mirrors.items() if i not in before)
    assert new.url == "ssh://git@ssh.example.org/acme/app.git"
    assert new.auth_method == "ssh_public_key"
    assert new.ssh_public_key and new.ssh_public_key != old.ssh_public_key
    assert new.ssh_public_key in json.dumps(waiting)
    row = wait_state(linked, "awaiting_key")
    assert old.id in linked.sample.app.push_mirrors
    assert not linked.gitlab.requests.matching("POST", f"/remote_mirrors/{new.id}/sync")

    # another Maintainer may click it
    linked.click(RotationActions.KEY_INSTALLED, RotationRef(rotation_id=row.id).dump(), user="UBOB")
    linked.wait_post("*finished*", method="chat.update")
    assert set(linked.sample.app.push_mirrors) == {linked.sample.https_mirror.id, new.id}
    assert linked.gitlab.requests.matching("POST", f"/remote_mirrors/{new.id}/sync")


def test_key_installed_by_a_developer_is_refused_and_changes_nothing(linked: Harness):
    view = rotate_form(linked, "group/app", linked.sample.ssh_mirror.id)
    linked.agent.submit(view, {})
    row = wait_state(linked, "awaiting_key")
    linked.click(
        RotationActions.KEY_INSTALLED, RotationRef(rotation_id=row.id).dump(), user="UDAVE"
    )
    linked.wait_response("Maintainer")
    assert [r.state for r in rotations(linked)] == ["awaiting_key"]


def test_the_rotate_button_is_on_each_row_and_in_details(linked: Harness):
    linked.command("list group/app")
    listing = json.dumps(linked.wait_response("Rotate credentials"))
    assert listing.count(RotationActions.ROTATE.value) == 2
    linked.command(f"show group/app {linked.sample.https_mirror.id}")
    linked.wait_response("Rotate credentials")


def test_the_alert_for_an_authentication_failure_offers_rotate_and_it_opens_the_form(
    sample, gitlab_sim, slack, sqlite_url
):
    h = start_harness(
        sample, gitlab_sim, slack, sqlite_url, generate_key(), mirrorbot_poll_interval=1
    )
    try:
        h.link("UALICE", ALICE_TOKEN)
        h.link("UBOB", BOB_TOKEN)
        h.command("watch group/app", channel="CALERTS")
        h.wait_response("now gets alerts")
        sample.world.fail_now(
            sample.https_mirror,
            f"fatal: Authentication failed for 'https://{HOST}/acme/app.git/'",
        )
        alert = h.wait_post("Mirror failing", timeout=10)
        button = next(
            e
            for b in alert["blocks"]
            for e in b.get("elements", [])
            if e.get("action_id") == RotationActions.ROTATE
        )
        assert button["text"]["text"] == "Rotate credentials"
        assert "Re-create" not in json.dumps(alert)
        h.click(RotationActions.ROTATE, button["value"], user="UBOB", channel="CALERTS")
        view = opened_view(h, "view-rotate", method="views.update")
        h.agent.submit(view, credentials("rotator", NEW_PASSWORD), user="UBOB")
        done = h.wait_post("*finished*", method="chat.update")
        assert done["channel"] == "CALERTS" and "<@UBOB>" in json.dumps(done)
    finally:
        h.server.stop()


def test_a_host_key_alert_offers_re_create(sample, gitlab_sim, slack, sqlite_url):
    h = start_harness(
        sample, gitlab_sim, slack, sqlite_url, generate_key(), mirrorbot_poll_interval=1
    )
    try:
        h.link("UALICE", ALICE_TOKEN)
        h.command("watch group/app", channel="CALERTS")
        h.wait_response("now gets alerts")
        sample.world.fail_now(sample.ssh_mirror, "Host key verification failed.")
        alert = json.dumps(h.wait_post("Mirror failing", timeout=10))
        assert "Re-create (new host keys)" in alert
        assert RotationActions.RECREATE.value in alert
        value = MirrorRef(project_id=sample.app.id, mirror_id=sample.ssh_mirror.id).dump()
        assert json.dumps(value) in alert
    finally:
        h.server.stop()


def test_a_restart_while_the_new_mirror_syncs_finishes_the_rotation(
    sample, gitlab_sim, slack, database_url
):
    key = generate_key()
    first = start_harness(sample, gitlab_sim, slack, database_url, key)
    old_id = sample.https_mirror.id
    try:
        first.link("UALICE", ALICE_TOKEN)
        sample.world.timing.update_seconds = 3600  # the new mirror's sync runs… and runs
        view = rotate_form(first, "group/app", old_id)
        first.agent.submit(view, credentials("rotator", NEW_PASSWORD))
        wait_state(first, "syncing")
        first.wait(lambda: first.gitlab.requests.matching("POST", "/sync"))
    finally:
        first.server.stop()
    row = rotations(first)[0]
    assert row.state == "syncing" and row.running_until is None  # released on the way out
    assert set(sample.app.push_mirrors) >= {old_id, row.new_mirror_id}
    with sample.world.lock:  # GitLab finishes the sync while no bot runs
        new = sample.app.push_mirrors[row.new_mirror_id]
        new.phase_ends_at = sample.world.clock()
    sample.world.timing.update_seconds = 0.05

    second = start_harness(sample, gitlab_sim, slack, database_url, key)
    try:
        second.wait(lambda: rotations(second)[0].state == "done", timeout=15)
        assert old_id not in sample.app.push_mirrors
        assert row.new_mirror_id in sample.app.push_mirrors
        update = second.wait_post("*finished*", method="chat.update")
        assert update["ts"] == row.message_ts  # the same message, kept current
    finally:
        second.server.stop()


def test_a_rotation_left_unfinished_for_a_day_is_cleaned_up_and_the_person_told(
    linked: Harness,
):
    old = linked.sample.ssh_mirror
    view = rotate_form(linked, "group/app", old.id)
    linked.agent.submit(view, {})
    row = wait_state(linked, "awaiting_key")
    assert row.new_mirror_id in linked.sample.app.push_mirrors
    engine = create_sync_engine(sync_url(linked.settings.database_url), poolclass=NullPool)
    with engine.begin() as connection:  # a day passes
        connection.execute(update(RotationRow).values(expires_at=utcnow() - timedelta(seconds=1)))
    engine.dispose()
    told = linked.wait_post("cleaned up", timeout=10)
    assert told["channel"] == "UALICE"
    wait_state(linked, "expired")
    assert row.new_mirror_id not in linked.sample.app.push_mirrors
    assert old.id in linked.sample.app.push_mirrors
    audit = [e.result for e in linked.read(select(AuditEntry)) if e.operation == "rotate"]
    assert f"cleaned up: new mirror {row.new_mirror_id} deleted" in audit


def test_each_step_is_one_audit_line(linked: Harness):
    old = linked.sample.https_mirror
    view = rotate_form(linked, "group/app", old.id)
    linked.agent.submit(view, credentials("rotator", NEW_PASSWORD))
    wait_state(linked, "done")
    new_id = rotations(linked)[0].new_mirror_id
    entries = [
        (e.event, e.mirror_id, e.result)
        for e in linked.read(select(AuditEntry).order_by(AuditEntry.id))
        if e.operation == "rotate"
    ]
    assert entries == [
        ("requested", old.id, "rotate https://*****:*****@github.example.org/acme/app.git"),
        ("executed", new_id, f"new mirror created: {new_id}"),
        ("executed", new_id, "new mirror synced"),
        ("executed", old.id, f"old mirror deleted: {old.id}"),
    ]


def test_rotate_needing_approval_shows_the_url_and_the_settings_kept_then_runs(
    sample, gitlab_sim, slack, sqlite_url
):
    h = start_harness(
        sample,
        gitlab_sim,
        slack,
        sqlite_url,
        generate_key(),
        mirrorbot_approval_required="delete,rotate",
    )
    try:
        h.link("UALICE", ALICE_TOKEN)
        h.link("UBOB", BOB_TOKEN)
        old = sample.https_mirror
        view = rotate_form(h, "group/app", old.id)
        h.agent.submit(view, credentials("rotator", NEW_PASSWORD))
        card = h.wait_post("asks to *rotate the credentials of push mirror*")
        shown = json.dumps(card)
        assert "https://*****:*****@github.example.org/acme/app.git" in shown
        assert "Enabled: yes (unchanged)" in shown
        assert "Keep divergent refs: no (unchanged)" in shown
        assert "new username and password (hidden)" in shown
        assert len(sample.app.push_mirrors) == 2  # nothing made before the approval
        row = wait_state(h, "awaiting_approval")
        assert row.credentials_ciphertext and NEW_PASSWORD not in row.credentials_ciphertext
        request_id = next(
            ApprovalRef.model_validate_json(e["value"]).request_id
            for b in card["blocks"]
            for e in b.get("elements", [])
            if e.get("action_id") == ApprovalActions.APPROVE
        )
        h.click(ApprovalActions.APPROVE, ApprovalRef(request_id=request_id).dump(), user="UBOB")
        h.wait_post("*finished*", method="chat.update", timeout=10)
        assert old.id not in sample.app.push_mirrors
        assert rotations(h)[0].credentials_ciphertext is None
    finally:
        h.server.stop()


def test_no_password_reaches_slack_a_log_line_or_the_database(
    linked: Harness, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)
    linked.sample.world.reject_credentials(HOST, "rejected-" + NEW_PASSWORD)
    view = rotate_form(linked, "group/app", linked.sample.https_mirror.id)
    linked.agent.submit(view, credentials("rotator", "rejected-" + NEW_PASSWORD))
    wait_state(linked, "failed")
    view = rotate_form(linked, "group/app", linked.sample.https_mirror.id)
    linked.agent.submit(view, credentials("rotator", NEW_PASSWORD))
    wait_state(linked, "done")
    slack_calls = json.dumps([c.body for c in linked.slack.calls])
    assert "rotator" not in slack_calls and NEW_PASSWORD not in slack_calls
    assert NEW_PASSWORD not in caplog.text
    assert all(r.credentials_ciphertext is None for r in rotations(linked))
    folder = Path(linked.settings.database_url.removeprefix("sqlite:///")).parent
    for path in folder.iterdir():
        assert NEW_PASSWORD.encode() not in path.read_bytes()


def test_a_second_rotation_of_a_mirror_being_rotated_is_refused(linked: Harness):
    old = linked.sample.ssh_mirror
    linked.agent.submit(rotate_form(linked, "group/app", old.id), {})
    wait_state(linked, "awaiting_key")
    mirrors = set(linked.sample.app.push_mirrors)
    second = rotate_form(linked, "group/app", old.id)
    linked.agent.submit(second, {}, user="UBOB")
    linked.wait_post("already being rotated", method="chat.postEphemeral")
    assert set(linked.sample.app.push_mirrors) == mirrors
    assert len(rotations(linked)) == 1
