"""/mirror commands end to end: signed requests in, GitLab simulator and Slack stand-in out."""

import json
from dataclasses import replace

from bot.commands.actions import MirrorActions
from tests.slack.conftest import Harness


def test_help_explains_every_command(harness: Harness):
    harness.command("help")
    body = harness.wait_response("Mirrorbot")
    text = json.dumps(body)
    for word in ("list", "sync", "approvals", "watch", "login"):
        assert f"/mirror {word}" in text


def test_unknown_subcommand_gets_one_line_and_usage(harness: Harness):
    harness.command("frobnicate group/app")
    body = harness.wait_response("unknown command")
    assert body["response_type"] == "ephemeral"
    assert "/mirror help" in body["text"]


def test_unlinked_user_is_told_to_log_in(harness: Harness):
    harness.command("list group/app", user="UNEW")
    harness.wait_response("link your GitLab account with `/mirror login`")
    assert harness.gitlab.requests.entries == []


def test_list_shows_scrubbed_mirrors_with_buttons(linked: Harness):
    linked.command("list group/app")
    body = linked.wait_response("push mirror")
    text = json.dumps(body)
    assert "s3cr3t" not in text
    assert "https://*****:*****@github.example.org/acme/app.git" in text
    action_ids = [
        e["action_id"] for b in body["blocks"] if b["type"] == "actions" for e in b["elements"]
    ]
    assert action_ids.count(MirrorActions.SYNC) == 2
    assert action_ids.count(MirrorActions.PUBLIC_KEY) == 1  # only the ssh:// key mirror
    assert [r.username for r in linked.gitlab.requests.matching("GET", "/remote_mirrors")] == [
        "alice"
    ]


def test_list_accepts_a_pasted_url(linked: Harness):
    linked.command(f"list <{linked.gitlab.url}/group/app/-/settings/repository|group/app>")
    linked.wait_response("2 push mirrors")


def test_show_one_mirror_in_full(linked: Harness):
    mirror = linked.sample.ssh_mirror
    linked.command(f"show group/app {mirror.id}")
    body = linked.wait_response(f"Push mirror {mirror.id}")
    assert "SSH key" in json.dumps(body)


def test_key_of_an_ssh_mirror_and_of_a_password_mirror(linked: Harness):
    linked.command(f"key group/app {linked.sample.ssh_mirror.id}")
    assert "ssh-ed25519" in json.dumps(linked.wait_response("deploy key"))
    linked.command(f"key group/app {linked.sample.https_mirror.id}")
    linked.wait_response("has no SSH public key")


def sync_messages(h: Harness) -> list[str]:
    return [
        json.dumps(c.body, ensure_ascii=False)
        for c in h.posts() + h.posts("chat.update")
        if "sync" in c.body.get("text", "")
    ]


def test_sync_is_posted_as_requested_and_says_synced_once_gitlab_finished(linked: Harness):
    mirror = linked.sample.https_mirror
    linked.command(f"sync group/app {mirror.id}", channel="COPS")
    post = linked.wait_post("<@UALICE> requested a sync of 1 push mirror")
    assert post["channel"] == "COPS"
    assert "synced" not in json.dumps(post)
    update = linked.wait_post("<@UALICE> synced 1 push mirror", method="chat.update")
    assert update["channel"] == "COPS"
    assert ":large_green_circle: finished" in json.dumps(update, ensure_ascii=False)
    assert linked.gitlab.requests.matching("POST", "/sync")[0].username == "alice"


def test_a_sync_gitlab_reports_failed_is_announced_failed_with_its_likely_cause(
    linked: Harness,
):
    mirror = linked.sample.https_mirror
    linked.sample.world.set_outcome(mirror, "fatal: Authentication failed for 'https://x'")
    linked.command(f"sync group/app {mirror.id}")
    update = linked.wait_post("requested failed", method="chat.update")
    shown = json.dumps(update, ensure_ascii=False)
    assert f"The sync <@UALICE> requested failed: mirror {mirror.id} of *group/app*" in shown
    assert ":red_circle: failed" in shown
    assert "fatal: Authentication failed for" in shown
    assert "Likely cause: Authentication failed." in shown
    assert "renew the token or password" in shown  # the fix
    assert not any("synced" in message for message in sync_messages(linked))


def test_a_delayed_sync_of_a_failed_mirror_is_not_reported_before_gitlab_runs_it(
    linked: Harness,
):
    """GitLab delays a sync of a mirror that ran recently, and until then shows the previous
    update's `failed`: the reply must say "requested", not report that old failure."""
    world, mirror = linked.sample.world, linked.sample.https_mirror
    world.fail_now(mirror, "fatal: Authentication failed for 'https://x'")
    world.set_outcome(mirror, None)  # the credentials were fixed: the next update succeeds
    world.timing = replace(world.timing, sync_backoff_seconds=0.5)
    linked.command(f"sync group/app {mirror.id}")
    post = linked.wait_post("requested a sync")
    assert "sync requested" in json.dumps(post) and "failed" not in json.dumps(post)
    linked.wait_post("<@UALICE> synced 1 push mirror", method="chat.update")
    assert not any("requested failed" in message for message in sync_messages(linked))


def test_sync_all_mirrors_of_a_project(linked: Harness):
    linked.command("sync group/app")
    linked.wait_post("requested a sync of 2 push mirrors")
    linked.wait_post("synced 2 push mirrors", method="chat.update")
    assert len(linked.gitlab.requests.matching("POST", "/sync")) == 2


def test_enable_runs_at_once_and_names_who_did_it(linked: Harness):
    mirror = linked.sample.https_mirror
    mirror.enabled = False
    linked.command(f"enable group/app {mirror.id}")
    linked.wait_post("<@UALICE> enabled push mirror")
    assert mirror.enabled is True


def test_disable_waits_for_approval_by_default(linked: Harness):
    mirror = linked.sample.https_mirror
    linked.command(f"disable group/app {mirror.id}")
    card = linked.wait_post("asks to *disable push mirror*")
    assert "Approve" in json.dumps(card)
    assert mirror.enabled is True
    assert linked.gitlab.requests.matching("PUT") == []


def test_developer_is_told_the_role_they_need(linked: Harness):
    linked.command(f"enable group/app {linked.sample.https_mirror.id}", user="UDAVE")
    linked.wait_response("you need the Maintainer role on group/app")


def test_rejected_token_says_to_log_in_again(linked: Harness):
    linked.sample.world.tokens["glpat-alice-maintainer-0001"].revoked = True
    linked.command("list group/app")
    linked.wait_response("GitLab rejected your token — run `/mirror login` again")


def test_unknown_project_and_unknown_mirror(linked: Harness):
    linked.command("list group/nope")
    linked.wait_response("project group/nope was not found")
    linked.command("show group/app 999")
    linked.wait_response("push mirror 999 does not exist in group/app")


def test_bad_inputs_each_get_a_usage_line(linked: Harness):
    cases = {
        "show group/app": "needs a mirror id",
        "show group/app twelve": "is not a mirror id",
        "list": "needs a project",
        "list group/app extra": "takes fewer arguments",
        "list justaname": "is not a GitLab project",
        "status --now": "takes only `--refresh`",
    }
    for text, expected in cases.items():
        linked.command(text)
        body = linked.wait_response(expected)
        assert "Usage:" in json.dumps(body)


def test_whoami_logout(linked: Harness):
    linked.command("whoami")
    linked.wait_response("linked to GitLab user *alice*")
    linked.command("logout")
    linked.wait_response("unlinked and its token deleted")
    linked.command("whoami", user="UALICE")
    linked.wait_response("You have no GitLab account linked")


def test_admins_list_and_unlink_users(linked: Harness):
    linked.command("users list")
    linked.wait_response("only Mirrorbot admins")
    linked.command("users list", user="UADMIN")
    linked.wait_response("<@UBOB> → *bob*")
    linked.command("users unlink <@UDAVE|dave>", user="UADMIN")
    linked.wait_response("unlinked <@UDAVE>")


def test_pull_mirror_show_and_start(linked: Harness):
    linked.command("pull group/app")
    linked.wait_response("has no pull mirror (pull mirroring is a GitLab Premium feature)")
    linked.sample.world.set_pull_mirror(linked.sample.app, "https://u:p@up.example.org/a.git")
    linked.command("pull group/app")
    body = linked.wait_response("Pull mirror")
    assert "https://*****:*****@up.example.org/a.git" in json.dumps(body)
    linked.command("pull sync group/app")
    linked.wait_post("started pull mirroring")


def test_a_bad_signature_reaches_no_handler(harness: Harness):
    forged = harness.agent.command("list group/app", secret="wrong-secret")
    stale = harness.agent.command("list group/app", timestamp=1_000_000_000)
    assert forged.status_code == 401 and stale.status_code == 401
    assert harness.gitlab.requests.entries == [] and harness.responses() == []


def test_watch_unwatch_watching(linked: Harness):
    linked.command("watch group/app <#CALERTS|alerts>", channel="C1")
    linked.wait_response("<#CALERTS|calerts> now gets alerts for the mirrors of group/app")
    linked.command("watching", channel="CALERTS")
    linked.wait_response("This channel watches")
    linked.command("watch group/app", user="UDAVE", channel="C2")
    linked.wait_response("you need the Maintainer role")
    linked.command("unwatch group/app", channel="CALERTS")
    linked.wait_response("no longer watches group/app")


def test_status_answers_from_observations_and_refreshes(linked: Harness):
    linked.command("status", channel="C9")
    linked.wait_response("watches no project")
    linked.command("watch group/app", channel="C9")
    linked.wait_response("now gets alerts")
    linked.command("status", channel="C9")
    linked.wait_response("nothing has been checked yet")
    linked.sample.world.fail_now(linked.sample.https_mirror, "fatal: Authentication failed")
    reads = len(linked.gitlab.requests.matching("GET"))
    linked.command("status --refresh", channel="C9", user="USTRANGER")  # spends the budget
    linked.wait_response("link your GitLab account")
    assert len(linked.gitlab.requests.matching("GET")) == reads
    linked.command("status --refresh", channel="C9")
    body = linked.wait_response("just refreshed")
    text = json.dumps(body)
    assert "1 failing" in text and "Authentication failed" in text


def test_show_and_status_name_the_likely_cause_of_a_failing_mirror(linked: Harness):
    mirror = linked.sample.https_mirror
    linked.sample.world.fail_now(mirror, "remote: Repository not found.\nfatal: 404")
    linked.command("watch group/app", channel="C9")
    linked.wait_response("now gets alerts")
    linked.command("status --refresh", channel="C9")
    status = json.dumps(linked.wait_response("just refreshed"))
    assert "likely cause: Target repository not found or not accessible" in status
    linked.command(f"show group/app {mirror.id}", channel="C9")
    details = json.dumps(linked.wait_response("Divergent refs"))
    assert "Likely cause: Target repository not found or not accessible." in details
    assert "Check that the target repository exists" in details  # the fix


def test_approvals_lists_pending_requests(linked: Harness):
    linked.command(f"delete group/app {linked.sample.https_mirror.id}")
    linked.wait_post("asks to *delete push mirror*")
    linked.command("approvals", user="UBOB")
    linked.wait_response("<@UALICE>: delete push mirror")


def test_a_token_in_a_mirror_urls_query_string_never_reaches_slack(linked):
    """GitLab masks a mirror URL's userinfo, not its query string."""
    mirror = linked.sample.world.add_push_mirror(
        linked.sample.app, "https://h.example.org/x.git?access_token=qs-secret-42", enabled=True
    )
    linked.command("list group/app")
    linked.wait_response("h.example.org/x.git")
    linked.command(f"show group/app {mirror.id}")
    linked.wait_response("access_token=*****")
    assert "qs-secret-42" not in json.dumps([c.body for c in linked.slack.calls])
