"""Approvals by button: who may approve, and every transition happening exactly once."""

import json
import threading
from datetime import timedelta

import pytest

from bot.commands.actions import ApprovalActions, ApprovalRef
from tests.slack.conftest import Harness


def request_delete(h: Harness) -> str:
    """alice asks to delete the https mirror; returns the approval request id."""
    h.command(f"delete group/app {h.sample.https_mirror.id}", channel="COPS")
    card = h.wait_post("asks to *delete push mirror*")
    assert card["channel"] == "COPS"
    for block in card["blocks"]:
        for element in block.get("elements", []):
            if element.get("action_id") == ApprovalActions.APPROVE:
                return ApprovalRef.model_validate_json(element["value"]).request_id
    raise AssertionError("no Approve button on the card")


def approve(h: Harness, request_id: str, user: str, action: str = ApprovalActions.APPROVE):
    return h.click(action, ApprovalRef(request_id=request_id).dump(), user=user, channel="COPS")


def deletes(h: Harness) -> int:
    return len(h.gitlab.requests.matching("DELETE"))


def test_approval_by_another_maintainer_runs_with_the_requesters_token(linked: Harness):
    request_id = request_delete(linked)
    approve(linked, request_id, "UBOB")
    update = linked.wait_post("*executed* — approved by <@UBOB>", method="chat.update")
    assert update["channel"] == "COPS"
    assert linked.sample.https_mirror.id not in linked.sample.app.push_mirrors
    [delete] = linked.gitlab.requests.matching("DELETE")
    assert delete.username == "alice"  # the requester's token, not the approver's


def test_self_approval_is_refused(linked: Harness):
    request_id = request_delete(linked)
    approve(linked, request_id, "UALICE")
    linked.wait_response("you cannot approve your own request")
    assert deletes(linked) == 0


def test_a_developer_cannot_approve(linked: Harness):
    request_id = request_delete(linked)
    approve(linked, request_id, "UDAVE")
    linked.wait_response("you need the Maintainer role on group/app")
    assert deletes(linked) == 0


def test_an_unlinked_user_cannot_approve(linked: Harness):
    request_id = request_delete(linked)
    approve(linked, request_id, "USTRANGER")
    linked.wait_response("link your GitLab account")
    assert deletes(linked) == 0


def test_a_double_click_executes_once(linked: Harness):
    request_id = request_delete(linked)
    threads = [
        threading.Thread(target=approve, args=(linked, request_id, "UBOB")) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    linked.wait_post("*executed* — approved by <@UBOB>", method="chat.update")
    linked.wait_response("already")
    assert deletes(linked) == 1


def test_reject_executes_nothing(linked: Harness):
    request_id = request_delete(linked)
    approve(linked, request_id, "UBOB", ApprovalActions.REJECT)
    linked.wait_post("rejected by <@UBOB>", method="chat.update")
    approve(linked, request_id, "UBOB")
    linked.wait_response("already rejected")
    assert deletes(linked) == 0


def test_the_requester_can_cancel_but_nobody_else(linked: Harness):
    request_id = request_delete(linked)
    approve(linked, request_id, "UBOB", ApprovalActions.CANCEL)
    linked.wait_response("only the person who asked can cancel")
    approve(linked, request_id, "UALICE", ApprovalActions.CANCEL)
    linked.wait_post("cancelled by the requester", method="chat.update")
    assert deletes(linked) == 0


def test_an_expired_request_executes_nothing(linked: Harness):
    linked.server.services.approvals._ttl = timedelta(seconds=-1)  # expires on creation
    request_id = request_delete(linked)
    approve(linked, request_id, "UBOB")
    linked.wait_response("has expired")
    assert deletes(linked) == 0


def test_the_requesters_revoked_token_shows_a_clear_failure_on_the_card(linked: Harness):
    request_id = request_delete(linked)
    linked.sample.world.tokens["glpat-alice-maintainer-0001"].revoked = True
    approve(linked, request_id, "UBOB")
    card = linked.wait_post(":x: *failed* — approved by <@UBOB>", method="chat.update")
    assert "GitLab rejected your token" in json.dumps(card, ensure_ascii=False)
    assert linked.sample.https_mirror.id in linked.sample.app.push_mirrors


def test_every_step_is_in_the_audit_log(linked: Harness):
    from tests.test_cli import mirrorbot

    request_id = request_delete(linked)
    approve(linked, request_id, "UBOB")
    linked.wait_post("executed", method="chat.update")
    env = {"DATABASE_URL": linked.settings.database_url, "PATH": "/usr/bin:/bin"}
    result = mirrorbot(env, "audit", "--project", "group/app")
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["event"] for e in events] == ["requested", "approved", "executed"]
    assert events[2]["actor"] == "UALICE" and events[2]["approver"] == "UBOB"
    assert all(e["mirror_id"] == linked.sample.https_mirror.id for e in events)


@pytest.mark.postgres
def test_two_replicas_on_postgres_approving_at_once_execute_once(
    sample, gitlab_sim, slack, postgres_url
):
    from bot.store.crypto import generate_key
    from tests.conftest import ALICE_TOKEN, BOB_TOKEN
    from tests.slack.conftest import start_harness

    key = generate_key()
    first = start_harness(sample, gitlab_sim, slack, postgres_url, key)
    second = start_harness(sample, gitlab_sim, slack, postgres_url, key)
    try:
        first.link("UALICE", ALICE_TOKEN)
        first.link("UBOB", BOB_TOKEN)
        request_id = request_delete(first)
        barrier = threading.Barrier(4)

        def click(h: Harness) -> None:
            barrier.wait()
            approve(h, request_id, "UBOB")

        threads = [
            threading.Thread(target=click, args=(h,)) for h in (first, second, first, second)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        first.wait_post("*executed* — approved by <@UBOB>", method="chat.update")
        first.wait(lambda: len([r for r in first.responses() if "already" in json.dumps(r)]) == 3)
        assert deletes(first) == 1
    finally:
        first.server.stop()
        second.server.stop()


def test_expired_cards_are_updated_by_the_sweeper(linked: Harness):
    # The server's own background loop finds the expired request and edits its card.
    linked.server.services.approvals._ttl = timedelta(seconds=-1)
    request_delete(linked)
    linked.wait_post("expired without a decision", method="chat.update")
    assert deletes(linked) == 0


def test_a_click_that_fails_after_the_ack_is_told_to_the_person(linked: Harness):
    # A value no button of ours carries: the work after the ack raises, and the person
    # gets one line instead of silence.
    linked.click(ApprovalActions.APPROVE, "not a request", user="UBOB")
    linked.wait_response("something went wrong on Mirrorbot's side")


# --- four eyes means two GitLab users ----------------------------------------------------------


def test_a_second_slack_account_of_the_requesters_gitlab_user_cannot_approve(linked: Harness):
    from tests.conftest import ALICE_TOKEN

    linked.link("UALT", ALICE_TOKEN)  # alice's alt account, linked with her own token
    request_id = request_delete(linked)
    approve(linked, request_id, "UALT")
    linked.wait_response("linked to the same GitLab user as the requester's")
    assert deletes(linked) == 0
    # A real second maintainer still can, and the change reaches GitLab as the requester.
    approve(linked, request_id, "UBOB")
    linked.wait_post("*executed* — approved by <@UBOB>", method="chat.update")
    [delete] = linked.gitlab.requests.matching("DELETE")
    assert delete.username == "alice"
    assert linked.sample.https_mirror.id not in linked.sample.app.push_mirrors


def test_a_requester_relinked_to_the_approvers_gitlab_user_changes_nothing(linked: Harness):
    from bot.slack.ids import Fields, Views
    from tests.conftest import BOB_TOKEN
    from tests.slack.test_buttons_and_forms import opened_view

    request_id = request_delete(linked)
    linked.command("login", user="UALICE")  # alice's Slack account now runs as bob
    view = opened_view(linked, Views.LOGIN)
    linked.agent.submit(view, {Fields.TOKEN: {Fields.TOKEN: {"value": BOB_TOKEN}}}, user="UALICE")
    linked.wait_post("Linked to GitLab user *bob*", method="views.update")
    approve(linked, request_id, "UBOB")
    card = linked.wait_post(":x: *failed*", method="chat.update")
    assert "now linked to another GitLab user" in json.dumps(card)
    assert deletes(linked) == 0


# --- who sees pending requests ----------------------------------------------------------------


def test_approvals_shows_nothing_to_an_unlinked_user(linked: Harness):
    request_delete(linked)
    linked.command("approvals", user="USTRANGER")
    linked.wait_response("link your GitLab account")
    shown = json.dumps(linked.responses())
    assert "group/app" not in shown and "delete push mirror" not in shown


def test_approvals_shows_nothing_to_a_user_whose_token_cannot_read_the_project(linked: Harness):
    eve = linked.sample.world.add_user("eve")  # a GitLab user with no access to group/app
    linked.sample.world.add_token(eve, "glpat-eve-outsider-000005")
    linked.link("UEVE", "glpat-eve-outsider-000005")
    request_delete(linked)
    linked.command("approvals", user="UEVE")
    linked.wait_response("No approval requests are waiting")
    assert "group/app" not in json.dumps(linked.responses())
    linked.command("approvals", user="UBOB")  # a maintainer of group/app sees it
    linked.wait_response("<@UALICE>: delete push mirror")


def test_a_project_access_token_of_the_requester_cannot_approve(linked: Harness):
    """A Maintainer can mint project access tokens at will: each is a GitLab bot user with
    an id of its own, so comparing user ids alone would let one person approve."""
    world = linked.sample.world
    robot = world.add_user("project_1_bot_0a1b", bot=True)
    world.add_token(robot, "glpat-project-bot-token-0009")
    linked.sample.app.members[robot.id] = 40  # the token's Maintainer role on group/app
    linked.link("UALT", "glpat-project-bot-token-0009")
    request_id = request_delete(linked)
    approve(linked, request_id, "UALT")
    linked.wait_response("a project or group access token cannot approve")
    assert deletes(linked) == 0
    approve(linked, request_id, "UBOB")  # a second person still can
    linked.wait_post("*executed* — approved by <@UBOB>", method="chat.update")
    assert deletes(linked) == 1


def test_approvals_shows_requests_only_to_maintainers_of_the_project(linked: Harness):
    request_delete(linked)
    linked.command("approvals", user="UDAVE")  # a Developer of group/app: no mirrors for him
    linked.wait_response("No approval requests are waiting")
    linked.command("approvals", user="UBOB")
    linked.wait_response("<@UALICE>: delete push mirror")


def test_a_decided_request_keeps_no_parameters(linked: Harness):
    """A request's parameters may hold a pull mirror's password: once it is decided they
    are erased, whatever the outcome."""
    from sqlalchemy import create_engine, text

    from bot.store.db import sync_url

    def request(command: str) -> str:
        before = len(linked.slack.of("chat.postMessage"))
        linked.command(command, channel="COPS")
        linked.slack.wait_for(lambda: len(linked.slack.of("chat.postMessage")) > before)
        card = linked.slack.of("chat.postMessage")[-1].body
        return next(
            ApprovalRef.model_validate_json(element["value"]).request_id
            for block in card["blocks"]
            for element in block.get("elements", [])
            if element.get("action_id") == ApprovalActions.APPROVE
        )

    https, ssh = linked.sample.https_mirror.id, linked.sample.ssh_mirror.id
    executed = request(f"delete group/app {https}")
    rejected = request(f"disable group/app {ssh}")
    cancelled = request(f"delete group/app {ssh}")
    approve(linked, executed, "UBOB")
    linked.wait_post("*executed* — approved by <@UBOB>", method="chat.update")
    approve(linked, rejected, "UBOB", ApprovalActions.REJECT)
    linked.wait_post("rejected by <@UBOB>", method="chat.update")
    approve(linked, cancelled, "UALICE", ApprovalActions.CANCEL)
    linked.wait_post("cancelled by the requester", method="chat.update")
    engine = create_engine(sync_url(linked.settings.database_url))
    with engine.connect() as connection:
        kept = connection.execute(
            text("SELECT status, params_ciphertext FROM approval_requests")
        ).all()
    engine.dispose()
    assert sorted(status for status, _ in kept) == ["cancelled", "executed", "rejected"]
    assert [params for _, params in kept] == [None, None, None]
