"""Buttons act on their mirror as the clicker; modals validate before GitLab is called."""

import json

import pytest

from bot.commands.actions import MirrorActions, MirrorRef
from bot.slack.blocks.mirrors import mirror_row
from bot.slack.ids import Fields, FormContext, Views
from tests.slack.conftest import Harness


def value(h: Harness, mirror_id: int | None = None) -> str:
    return MirrorRef(project_id=h.sample.app.id, mirror_id=mirror_id).dump()


def channel_message_with(h: Harness, mirror) -> dict:
    from bot.gitlab.models import PushMirror

    model = PushMirror.model_validate(h.sample.world.push_mirror_entity(mirror))
    return {"ts": "100.1", "text": "mirror", "blocks": mirror_row(h.sample.app.id, model)}


def test_enable_button_acts_as_the_clicker_and_rerenders_the_message(linked: Harness):
    mirror = linked.sample.https_mirror
    mirror.enabled = False
    linked.click(
        MirrorActions.ENABLE,
        value(linked, mirror.id),
        user="UBOB",
        message=channel_message_with(linked, mirror),
    )
    linked.wait_post("<@UBOB> enabled push mirror")
    rerendered = linked.wait_response('"replace_original": true')
    buttons = [
        e["action_id"]
        for b in rerendered["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
    ]
    assert MirrorActions.DISABLE in buttons and MirrorActions.ENABLE not in buttons
    assert mirror.enabled is True
    assert linked.gitlab.requests.matching("PUT")[0].username == "bob"


def test_a_developer_clicking_gets_the_role_message_and_nothing_changes(linked: Harness):
    mirror = linked.sample.https_mirror
    started_before = mirror.last_update_started_at
    linked.click(MirrorActions.SYNC, value(linked, mirror.id), user="UDAVE")
    linked.wait_response("you need the Maintainer role on group/app")
    # The sync is asked for at once (no role check first); GitLab refuses it for a Developer.
    assert [r.status for r in linked.gitlab.requests.matching("POST", "/sync")] == [401]
    assert mirror.last_update_started_at == started_before


def test_sync_button_posts_a_followed_reply(linked: Harness):
    linked.click(MirrorActions.SYNC, value(linked, linked.sample.https_mirror.id))
    linked.wait_post(":large_green_circle: finished", method="chat.update")


def test_public_key_and_details_buttons_answer_privately(linked: Harness):
    linked.click(MirrorActions.PUBLIC_KEY, value(linked, linked.sample.ssh_mirror.id))
    key = linked.wait_response("deploy key")
    assert key["response_type"] == "ephemeral"
    linked.click(MirrorActions.DETAILS, value(linked, linked.sample.https_mirror.id))
    linked.wait_response("Divergent refs")


def test_delete_button_asks_for_approval(linked: Harness):
    linked.click(MirrorActions.DELETE, value(linked, linked.sample.https_mirror.id))
    linked.wait_post("asks to *delete push mirror*")
    assert linked.sample.https_mirror.id in linked.sample.app.push_mirrors


def test_a_button_on_a_deleted_mirror_says_so(linked: Harness):
    linked.click(MirrorActions.DETAILS, value(linked, 4242))
    linked.wait_response("push mirror 4242 does not exist in group/app")


def test_next_page_of_a_long_list(linked: Harness):
    for n in range(30):
        linked.sample.world.add_push_mirror(linked.sample.app, f"https://h{n}.example.org/x")
    linked.command("list group/app")
    first = linked.wait_response("Mirrors 1–20 of 32")
    assert len(first["blocks"]) <= 50
    more = MirrorRef(project_id=linked.sample.app.id, offset=20).dump()
    linked.click(MirrorActions.PAGE, more)
    linked.wait_response("Mirrors 21–32 of 32")


# --- modals ------------------------------------------------------------------------------------


def opened_view(h: Harness, callback_id: str, method: str = "views.open") -> dict:
    body = h.wait_post(callback_id, method=method)
    view = body["view"]
    return json.loads(view) if isinstance(view, str) else view


def form_values(
    url: str | None = None, regex: str | None = None, options=("enabled",), auth="password"
) -> dict:
    values = {
        Fields.AUTH_METHOD: {
            Fields.AUTH_METHOD: {"type": "static_select", "selected_option": {"value": auth}}
        },
        Fields.OPTIONS: {
            Fields.OPTIONS: {
                "type": "checkboxes",
                "selected_options": [{"value": o} for o in options],
            }
        },
        Fields.BRANCH_REGEX: {Fields.BRANCH_REGEX: {"type": "plain_text_input", "value": regex}},
    }
    if url is not None:
        values[Fields.URL] = {Fields.URL: {"type": "plain_text_input", "value": url}}
    return {str(k): {str(i): v for i, v in inner.items()} for k, inner in values.items()}


def test_add_opens_a_form_and_creates_the_mirror_in_the_channel(linked: Harness):
    linked.command("add group/app", channel="COPS")
    view = opened_view(linked, Views.ADD_PUSH_MIRROR)
    assert FormContext.model_validate_json(view["private_metadata"]).channel_id == "COPS"
    response = linked.agent.submit(view, form_values("https://bot:pw@backup.example.org/a.git"))
    assert response.status_code == 200 and response.text == ""
    post = linked.wait_post("<@UALICE> added push mirror")
    assert post["channel"] == "COPS"
    assert "bot:pw" not in json.dumps(post)
    assert len(linked.sample.app.push_mirrors) == 3


def test_add_form_errors_are_shown_before_gitlab_is_called(linked: Harness):
    linked.command("add group/app")
    view = opened_view(linked, Views.ADD_PUSH_MIRROR)
    cases = [
        (form_values("ftp://h.example/x"), Fields.URL, "only http"),
        (
            form_values("https://h.example/x", regex="(unclosed"),
            Fields.BRANCH_REGEX,
            "not a valid regular expression",
        ),
        (
            form_values(
                "https://h.example/x",
                regex="^main$",
                options=("enabled", "only_protected_branches"),
            ),
            Fields.BRANCH_REGEX,
            "not both",
        ),
    ]
    for values, field, message in cases:
        response = linked.agent.submit(view, values)
        answer = response.json()
        assert answer["response_action"] == "errors"
        assert message in answer["errors"][field]
    assert linked.gitlab.requests.matching("POST", "/remote_mirrors") == []


def test_gitlab_refusing_a_new_mirror_is_told_to_the_user(linked: Harness):
    linked.command("add group/app")
    view = opened_view(linked, Views.ADD_PUSH_MIRROR)
    linked.agent.submit(view, form_values("https://10.0.0.5/x.git"))
    linked.wait_post("Requests to the local network are not allowed", method="chat.postEphemeral")


def test_edit_opens_loading_then_the_prefilled_form(linked: Harness):
    mirror = linked.sample.https_mirror
    mirror.keep_divergent_refs = True
    linked.command(f"edit group/app {mirror.id}")
    linked.wait_post("Loading from GitLab", method="views.open")
    view = opened_view(linked, Views.EDIT_PUSH_MIRROR, method="views.update")
    assert "cannot change a mirror's URL" in json.dumps(view)
    linked.agent.submit(view, form_values(regex="^release/", options=("enabled",)))
    linked.wait_post("<@UALICE> updated push mirror")
    assert mirror.mirror_branch_regex == "^release/" and mirror.enabled is True


@pytest.mark.parametrize(
    ("before", "typed", "after"),
    [
        # (regex, protected only) on GitLab before; what the form was given; on GitLab after
        (("^release/", False), (None, False), ("", False)),  # an emptied filter is removed
        (("^release/", False), (None, True), (None, True)),  # protected only replaces it
        ((None, True), (None, False), (None, False)),  # protected only turned off
        ((None, True), ("^main$", False), ("^main$", False)),  # a filter replaces it
    ],
)
def test_edit_sets_exactly_the_branch_choice_in_the_form(linked: Harness, before, typed, after):
    mirror = linked.sample.https_mirror
    mirror.mirror_branch_regex, mirror.only_protected_branches = before
    linked.command(f"edit group/app {mirror.id}")
    view = opened_view(linked, Views.EDIT_PUSH_MIRROR, method="views.update")
    if before[0]:
        assert f'"initial_value": "{before[0]}"' in json.dumps(view)
    regex, protected = typed
    options = ("enabled", "only_protected_branches") if protected else ("enabled",)
    response = linked.agent.submit(view, form_values(regex=regex, options=options))
    assert response.status_code == 200 and response.text == ""  # GitLab refused nothing
    linked.wait_post("<@UALICE> updated push mirror")
    assert (mirror.mirror_branch_regex or None, mirror.only_protected_branches) == (
        after[0] or None,
        after[1],
    )
    assert linked.gitlab.requests.matching("PUT", "/remote_mirrors")[-1].status == 200


def test_an_emptied_branch_filter_makes_the_mirror_push_every_branch(linked: Harness):
    mirror = linked.sample.https_mirror
    mirror.mirror_branch_regex = "^release/"
    linked.command(f"edit group/app {mirror.id}")
    view = opened_view(linked, Views.EDIT_PUSH_MIRROR, method="views.update")
    linked.agent.submit(view, form_values(regex=None))
    linked.wait_post("<@UALICE> updated push mirror")
    sent = linked.gitlab.requests.matching("PUT", "/remote_mirrors")[-1].body
    assert sent["mirror_branch_regex"] == "" and "only_protected_branches" not in sent
    assert not mirror.mirror_branch_regex
    linked.command(f"show group/app {mirror.id}")
    assert "all branches" in json.dumps(linked.wait_response("Divergent refs"))


def test_an_edit_refused_by_validation_keeps_the_form_open_and_changes_nothing(
    linked: Harness,
):
    """`response_action: errors` leaves the modal open with everything the person typed;
    after fixing the one field, the same form goes through."""
    mirror = linked.sample.https_mirror
    mirror.mirror_branch_regex = "^release/"
    linked.command(f"edit group/app {mirror.id}")
    view = opened_view(linked, Views.EDIT_PUSH_MIRROR, method="views.update")
    refused = linked.agent.submit(view, form_values(regex="(unclosed"))
    assert refused.json()["response_action"] == "errors"
    assert set(refused.json()["errors"]) == {Fields.BRANCH_REGEX.value}
    assert linked.gitlab.requests.matching("PUT", "/remote_mirrors") == []
    fixed = linked.agent.submit(view, form_values(regex="^main$"))
    assert fixed.text == ""
    linked.wait_post("<@UALICE> updated push mirror")
    assert mirror.mirror_branch_regex == "^main$" and mirror.enabled is True


def test_pull_config_needs_approval_and_keeps_the_password_secret(linked: Harness):
    linked.command("pull config group/app", channel="COPS")
    view = opened_view(linked, Views.PULL_CONFIG, method="views.update")
    values = {
        Fields.URL: {Fields.URL: {"value": "https://up.example.org/a.git"}},
        Fields.AUTH_USER: {Fields.AUTH_USER: {"value": "puller"}},
        Fields.AUTH_PASSWORD: {Fields.AUTH_PASSWORD: {"value": "hunter2-secret"}},
        Fields.OPTIONS: {Fields.OPTIONS: {"selected_options": [{"value": "enabled"}]}},
    }
    linked.agent.submit(
        view, {str(k): {str(i): v for i, v in d.items()} for k, d in values.items()}
    )
    card = linked.wait_post("asks to *configure the pull mirror*")
    from bot.commands.actions import ApprovalActions, ApprovalRef

    request_id = next(
        ApprovalRef.model_validate_json(e["value"]).request_id
        for b in card["blocks"]
        for e in b.get("elements", [])
        if e.get("action_id") == ApprovalActions.APPROVE
    )
    linked.click(
        ApprovalActions.APPROVE,
        ApprovalRef(request_id=request_id).dump(),
        user="UBOB",
        channel="COPS",
    )
    linked.wait_post("*executed* — approved by <@UBOB>", method="chat.update")
    assert linked.sample.app.pull_mirror.url == "https://puller:hunter2-secret@up.example.org/a.git"
    everything = json.dumps([c.body for c in linked.slack.calls])
    assert "hunter2" not in everything
    db = linked.settings.database_url.removeprefix("sqlite:///")
    from pathlib import Path

    for path in Path(db).parent.iterdir():
        assert b"hunter2" not in path.read_bytes()


def approve_the_card(h: Harness, contains: str, *, channel: str = "C1") -> None:
    from bot.commands.actions import ApprovalActions, ApprovalRef

    card = h.wait_post(contains)
    request_id = next(
        ApprovalRef.model_validate_json(e["value"]).request_id
        for b in card["blocks"]
        for e in b.get("elements", [])
        if e.get("action_id") == ApprovalActions.APPROVE
    )
    h.click(
        ApprovalActions.APPROVE,
        ApprovalRef(request_id=request_id).dump(),
        user="UBOB",
        channel=channel,
    )
    h.wait_post("*executed* — approved by <@UBOB>", method="chat.update")


def test_an_emptied_pull_mirror_branch_filter_is_removed(linked: Harness):
    pull = linked.sample.world.set_pull_mirror(
        linked.sample.app, "https://up.example.org/a.git", enabled=True
    )
    pull.mirror_branch_regex = "^main$"
    linked.command("pull config group/app")
    view = opened_view(linked, Views.PULL_CONFIG, method="views.update")
    assert '"initial_value": "^main$"' in json.dumps(view)
    values = {
        str(Fields.OPTIONS): {str(Fields.OPTIONS): {"selected_options": [{"value": "enabled"}]}},
        str(Fields.BRANCH_REGEX): {str(Fields.BRANCH_REGEX): {"value": None}},
    }
    linked.agent.submit(view, values)
    approve_the_card(linked, "asks to *configure the pull mirror*")
    assert not linked.sample.app.pull_mirror.mirror_branch_regex


def test_login_validates_the_token_and_links(harness: Harness):
    harness.command("login", user="UNEW")
    view = opened_view(harness, Views.LOGIN)
    empty = harness.agent.submit(view, {Fields.TOKEN: {Fields.TOKEN: {"value": ""}}}, user="UNEW")
    assert empty.json()["response_action"] == "errors"
    answer = harness.agent.submit(
        view, {Fields.TOKEN: {Fields.TOKEN: {"value": "glpat-bob-maintainer-00004"}}}, user="UNEW"
    )
    assert answer.json()["response_action"] == "update"
    harness.wait_post("Linked to GitLab user *bob*", method="views.update")
    harness.command("whoami", user="UNEW")
    harness.wait_response("linked to GitLab user *bob*")


def test_login_with_a_wrong_token_says_so_in_the_modal(harness: Harness):
    harness.command("login", user="UNEW")
    view = opened_view(harness, Views.LOGIN)
    harness.agent.submit(
        view, {Fields.TOKEN: {Fields.TOKEN: {"value": "glpat-wrong"}}}, user="UNEW"
    )
    update = harness.wait_post("GitLab rejected your token", method="views.update")
    assert "glpat-wrong" not in json.dumps(update)
