"""Masked credentials stay masks: `https://*****:*****@host` outside a code span is read
as bold by Slack's mrkdwn (and shown as `https://****:*@…`). A whole scenario runs through
the real app; no mrkdwn text of any Slack call has `*****` outside a code span."""

import json
import re
import subprocess
import sys

import pytest

from bot.commands.actions import (
    AlertActions,
    ApprovalActions,
    ApprovalRef,
    MirrorActions,
    MirrorRef,
)
from bot.slack.ids import Views
from bot.store.crypto import generate_key
from tests.slack.conftest import Harness, start_harness
from tests.slack.test_alerts_e2e import WEBHOOK_SECRET, push_event, send_webhook
from tests.slack.test_app_home import open_home
from tests.slack.test_buttons_and_forms import form_values, opened_view

MASK = "*****"
# What GitLab writes into last_error: the URL with its userinfo masked.
MASKED_ERROR = (
    "fatal: Authentication failed for 'https://*****:*****@github.example.org/acme/app.git/'"
)
_CODE_BLOCK = re.compile(r"```.*?```", re.DOTALL)
_CODE_SPAN = re.compile(r"`[^`\n]*`")


def outside_code(text: str) -> str:
    return _CODE_SPAN.sub("", _CODE_BLOCK.sub("", text))


def mrkdwn_texts(value, kind: str | None = None):
    """Every string Slack renders as mrkdwn: top-level `text` and every text object that
    is not plain_text (plain_text is shown literally)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "text" and isinstance(item, str):
                if value.get("type") != "plain_text":
                    yield item
            elif key in ("blocks", "view") and isinstance(item, str):
                yield from mrkdwn_texts(json.loads(item))
            elif key not in ("value", "private_metadata", "initial_value", "placeholder"):
                yield from mrkdwn_texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from mrkdwn_texts(item)


def unmasked_masks(bodies) -> list[str]:
    return [text for body in bodies for text in mrkdwn_texts(body) if MASK in outside_code(text)]


def test_the_checker_finds_a_mask_outside_a_code_span():
    assert unmasked_masks([{"text": f"added https://{MASK}:{MASK}@h/x"}]) != []
    assert unmasked_masks([{"text": f"added `https://{MASK}:{MASK}@h/x`"}]) == []
    assert unmasked_masks(
        [{"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": f"> {MASK}"}}]}]
    )


@pytest.fixture
def scenario(sample, gitlab_sim, slack, sqlite_url):
    h = start_harness(
        sample,
        gitlab_sim,
        slack,
        sqlite_url,
        generate_key(),
        gitlab_webhook_secret=WEBHOOK_SECRET,
        mirrorbot_poll_interval=3600,
    )
    from tests.conftest import ALICE_TOKEN, BOB_TOKEN

    h.link("UALICE", ALICE_TOKEN)
    h.link("UBOB", BOB_TOKEN)
    yield h
    h.server.stop()


def test_no_mask_reaches_slack_outside_a_code_span(scenario: Harness):
    h = scenario
    app, https = h.sample.app, h.sample.https_mirror
    h.sample.world.set_pull_mirror(app, "https://puller:pull-secret@up.example.org/app.git")
    ref = MirrorRef(project_id=app.id, mirror_id=https.id).dump()
    # Read: list, show, details, pull.
    h.command("list group/app")
    h.wait_response("2 push mirrors")
    h.command(f"show group/app {https.id}")
    h.click(MirrorActions.DETAILS, ref)
    h.command("pull group/app")
    # Change: add (its confirmation in the channel), an approval card, an approved delete.
    h.command("add group/app", channel="COPS")
    view = opened_view(h, Views.ADD_PUSH_MIRROR)
    h.agent.submit(view, form_values("https://bot:pw@backup.example.org/a.git"))
    h.wait_post("added push mirror")
    h.command(f"delete group/app {https.id}", channel="COPS")
    card = h.wait_post("asks to")
    request_id = next(
        ApprovalRef.model_validate_json(e["value"]).request_id
        for b in card["blocks"]
        for e in b.get("elements", [])
        if e.get("action_id") == ApprovalActions.APPROVE
    )
    h.command("approvals", user="UBOB")
    # Alerts: watch, a failure whose error names the masked URL, its alert, a mute.
    h.command("watch group/app", channel="CALERTS")
    h.wait_response("now gets alerts")
    h.sample.world.fail_now(https, MASKED_ERROR)
    send_webhook(h, push_event(h))
    h.wait_post("Mirror failing")
    h.command("watching", channel="CALERTS")
    h.command("status --refresh", channel="CALERTS")
    h.wait_response("failing")
    h.command("status", channel="CALERTS")
    h.slack.memberships["UALICE"] = ["CALERTS"]  # the home tab shows her channels' mirrors
    open_home(h)
    # The failure ends: a recovery reply and the alert updated to show it resolved.
    h.sample.world.set_outcome(https, None)
    h.sample.world.push(app)
    send_webhook(h, push_event(h))
    h.wait_post("Resolved: the mirror recovered", method="chat.update")
    h.click(AlertActions.MUTE, ref, channel="CALERTS")
    h.wait_post("muted alerts")
    h.click(
        ApprovalActions.APPROVE,
        ApprovalRef(request_id=request_id).dump(),
        user="UBOB",
        channel="COPS",
    )
    h.wait_post("executed", method="chat.update")
    bodies = [
        c.body for c in h.slack.calls if c.method not in ("auth.test", "apps.connections.open")
    ]
    assert any(MASK in json.dumps(body) for body in bodies)  # the scenario showed masks
    found = unmasked_masks(bodies)
    assert found == [], "\n".join(sorted(set(found)))


def test_the_console_shows_every_mask_whole():
    """The console renders the very messages Slack gets: a mask comes out as five stars,
    never eaten as bold markup (`https://****:****@…`)."""
    script = [
        "list demo/website",
        "show demo/api 4",
        "add demo/website",
        *("https://bot:tok@new.example.org/x.git", "password", "y", "n", "n", ""),
        "delete demo/website 1",
        "watching",
        "status --refresh",
        "as UGRACE",
        "approvals",
        "quit",
    ]
    result = subprocess.run(
        [sys.executable, "-m", "bot", "console", "--demo"],
        input="\n".join(script) + "\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "added push mirror" in out and "asks to" in out
    assert f"https://{MASK}:{MASK}@new.example.org/x.git" in out
    assert f"https://{MASK}:{MASK}@github.example.org" in out
    assert {run for run in re.findall(r"\*+", out)} == {MASK}
    assert "tok@" not in out


def test_free_text_gets_its_urls_and_masks_in_code_spans_and_nothing_else():
    from bot.slack.blocks.text import code, prose

    assert prose("push to <https://*****@h.example/x> failed: token ***** & more") == (
        "push to &lt;`https://*****@h.example/x`&gt; failed: token `*****` &amp; more"
    )
    assert code("https://h.example/`x`") == "`https://h.example/'x'`"  # a code span cannot be left
    assert prose("run `/mirror login` for https://h/x") == "run `/mirror login` for `https://h/x`"
