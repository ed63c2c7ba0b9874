"""The approver sees what they approve, and no change escapes the approval its effect needs."""

import json
from pathlib import Path

import pytest

from bot.commands.actions import ApprovalActions, ApprovalRef
from bot.slack.ids import Fields, Views
from tests.conftest import ALICE_TOKEN, BOB_TOKEN, SampleGitLab
from tests.slack.conftest import Harness, start_harness
from tests.slack.test_buttons_and_forms import form_values, opened_view


def inputs(**fields: dict) -> dict:
    return {str(k): {str(k): v} for k, v in fields.items()}


def request_id_on(card: dict) -> str:
    return next(
        ApprovalRef.model_validate_json(e["value"]).request_id
        for b in card["blocks"]
        for e in b.get("elements", [])
        if e.get("action_id") == ApprovalActions.APPROVE
    )


def approve(h: Harness, card: dict, user: str = "UBOB") -> None:
    h.click(ApprovalActions.APPROVE, ApprovalRef(request_id=request_id_on(card)).dump(), user=user)


def everything_sent_to_slack(h: Harness) -> str:
    return json.dumps([c.body for c in h.slack.calls], ensure_ascii=False)


@pytest.fixture
def approve_every_change(sample: SampleGitLab, gitlab_sim, slack, sqlite_url):
    from bot.store.crypto import generate_key

    h = start_harness(
        sample,
        gitlab_sim,
        slack,
        sqlite_url,
        generate_key(),
        mirrorbot_approval_required="add,edit,delete,disable,enable,pull-config",
    )
    h.link("UALICE", ALICE_TOKEN)
    h.link("UBOB", BOB_TOKEN)
    yield h
    h.server.stop()


# --- the card shows what the change sets ---------------------------------------------------------


def test_the_pull_config_card_shows_the_scrubbed_source_url_and_the_options_never_the_password(
    linked: Harness,
):
    linked.command("pull config group/app", channel="COPS")
    view = opened_view(linked, Views.PULL_CONFIG, method="views.update")
    linked.agent.submit(
        view,
        inputs(
            **{
                Fields.URL: {
                    "value": "https://puller:glpat-upstream-secret-77@up.example.org/a.git"
                },
                Fields.AUTH_USER: {"value": "puller-user"},
                Fields.AUTH_PASSWORD: {"value": "hunter2-secret"},
                Fields.OPTIONS: {
                    "selected_options": [{"value": "enabled"}, {"value": "mirror_trigger_builds"}]
                },
            }
        ),
    )
    card = linked.wait_post("asks to *configure the pull mirror*")
    text = json.dumps(card, ensure_ascii=False)
    assert "Source URL: `https://*****:*****@up.example.org/a.git`" in text
    for line in (
        "Enabled: yes",
        "Trigger pipelines: yes",
        "Only protected branches: no",
        "Overwrite diverged branches: no",
        "Credentials: username and password set (hidden)",
    ):
        assert line in text
    assert "^{date_short_pretty} {time}|" in text  # the expiry shows the date too
    approve(linked, card)
    linked.wait_post("*executed* — approved by <@UBOB>", method="chat.update")
    assert linked.sample.app.pull_mirror is not None
    sent = everything_sent_to_slack(linked)
    for secret in ("hunter2", "glpat-upstream-secret", "puller-user"):
        assert secret not in sent
    database = Path(linked.settings.database_url.removeprefix("sqlite:///"))
    for path in database.parent.iterdir():
        assert b"hunter2" not in path.read_bytes()
        assert b"glpat-upstream-secret" not in path.read_bytes()


def test_the_edit_card_shows_each_attribute_old_and_new(approve_every_change: Harness):
    h = approve_every_change
    mirror = h.sample.https_mirror
    h.command(f"edit group/app {mirror.id}")
    view = opened_view(h, Views.EDIT_PUSH_MIRROR, method="views.update")
    h.agent.submit(view, form_values(regex="^release/", options=("enabled", "keep_divergent_refs")))
    card = h.wait_post("asks to *edit push mirror*")
    text = json.dumps(card, ensure_ascii=False)
    assert f"*edit push mirror* {mirror.id} (`https://*****:*****@github.example.org" in text
    assert "push mirror push mirror" not in text
    assert "Branch filter: none → *`^release/`*" in text
    assert "Keep divergent refs: no → *yes*" in text
    assert "Authentication: password (unchanged)" in text
    assert "s3cr3t-pass" not in everything_sent_to_slack(h)
    assert h.gitlab.requests.matching("PUT") == []


def test_the_add_card_shows_the_scrubbed_target_and_every_attribute(approve_every_change: Harness):
    h = approve_every_change
    h.command("add group/app")
    view = opened_view(h, Views.ADD_PUSH_MIRROR)
    h.agent.submit(view, form_values("https://bot:pw-s3cret@backup.example.org/a.git"))
    card = h.wait_post("asks to *add a push mirror* in *group/app*")
    text = json.dumps(card, ensure_ascii=False)
    assert "Target URL: `https://*****:*****@backup.example.org/a.git`" in text
    for line in ("Authentication: password", "Enabled: yes", "Only protected branches: no"):
        assert line in text
    approve(h, card)
    update = h.wait_post("*executed* — approved by <@UBOB>", method="chat.update")
    assert "ran with <@UALICE>'s GitLab token" in json.dumps(update)
    assert len(h.sample.app.push_mirrors) == 3
    assert "pw-s3cret" not in everything_sent_to_slack(h)


# --- an edit needs the approval of what it does -------------------------------------------------


def test_an_edit_that_unticks_enabled_needs_the_approval_disable_needs(linked: Harness):
    mirror = linked.sample.https_mirror  # enabled; `disable` needs approval by default
    linked.command(f"edit group/app {mirror.id}")
    view = opened_view(linked, Views.EDIT_PUSH_MIRROR, method="views.update")
    linked.agent.submit(view, form_values(options=()))
    card = linked.wait_post("asks to *edit push mirror*")
    text = json.dumps(card, ensure_ascii=False)
    assert "This edit disables the mirror, so it needs the approval that `disable` needs" in text
    assert "Enabled: yes → *no*" in text
    assert mirror.enabled is True
    assert linked.gitlab.requests.matching("PUT") == []
    approve(linked, card)
    linked.wait_post("*executed* — approved by <@UBOB>", method="chat.update")
    assert mirror.enabled is False
    assert [put.username for put in linked.gitlab.requests.matching("PUT")] == ["alice"]


def test_an_edit_that_ticks_enabled_needs_the_approval_enable_needs(
    sample: SampleGitLab, gitlab_sim, slack, sqlite_url
):
    from bot.store.crypto import generate_key

    h = start_harness(
        sample, gitlab_sim, slack, sqlite_url, generate_key(), mirrorbot_approval_required="enable"
    )
    try:
        h.link("UALICE", ALICE_TOKEN)
        mirror = sample.https_mirror
        mirror.enabled = False
        h.command(f"edit group/app {mirror.id}")
        view = opened_view(h, Views.EDIT_PUSH_MIRROR, method="views.update")
        h.agent.submit(view, form_values(options=("enabled",)))
        card = h.wait_post("asks to *edit push mirror*")
        assert "This edit enables the mirror" in json.dumps(card)
        assert mirror.enabled is False
        assert h.gitlab.requests.matching("PUT") == []
    finally:
        h.server.stop()


def test_an_edit_that_leaves_enabled_as_it_is_runs_at_once_and_sends_no_toggle(linked: Harness):
    mirror = linked.sample.https_mirror
    linked.command(f"edit group/app {mirror.id}")
    view = opened_view(linked, Views.EDIT_PUSH_MIRROR, method="views.update")
    linked.agent.submit(view, form_values(regex="^main$", options=("enabled",)))
    linked.wait_post("<@UALICE> updated push mirror")
    [put] = linked.gitlab.requests.matching("PUT")
    assert "enabled" not in put.body and put.body["mirror_branch_regex"] == "^main$"
