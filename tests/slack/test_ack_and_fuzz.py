"""Slack is answered before GitLab is; no input, however odd, escapes as an exception."""

import asyncio
import concurrent.futures
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.commands.actions import MirrorActions, MirrorRef
from bot.commands.parse import UsageError, parse_command
from bot.commands.results import Problem
from bot.commands.run import Actor, run_text
from bot.services import build_services
from bot.simulator import Fault
from bot.slack.blocks.replies import render
from tests.conftest import FAST_RETRY
from tests.slack.conftest import Harness


def test_every_response_comes_back_before_gitlab_answers(linked: Harness):
    linked.gitlab.requests.clear()  # the links made by the fixture
    # GitLab answers nothing until the acks are back: an ack that waited for GitLab
    # would never come (the test's client gives up after 10 s), however slow the machine.
    hold = linked.gitlab.inject(Fault("hold", times=None))
    mirror_id = linked.sample.https_mirror.id
    try:
        acks = [
            linked.agent.command("list group/app"),
            linked.agent.command(f"sync group/app {mirror_id}"),
            linked.agent.command(f"edit group/app {mirror_id}"),
            linked.agent.click(
                MirrorActions.DETAILS,
                MirrorRef(project_id=linked.sample.app.id, mirror_id=mirror_id).dump(),
            ),
        ]
        assert [a.status_code for a in acks] == [200, 200, 200, 200]
        assert linked.gitlab.requests.entries == []  # nothing answered before the acks
    finally:
        hold.release()
    # ...and the work still completes after the ack.
    linked.wait_response("2 push mirrors", timeout=15)
    linked.wait_post("Loading from GitLab", method="views.open")
    linked.wait_response("Divergent refs", timeout=15)
    assert hold.hits > 0  # the work did reach GitLab, and was held there


@given(
    st.one_of(
        st.text(max_size=300),
        st.text(alphabet=st.characters(min_codepoint=0x2000, max_codepoint=0x1FAFF), max_size=3000),
        st.lists(
            st.sampled_from(
                [
                    "list",
                    "show",
                    "sync",
                    "pull",
                    "config",
                    "group/app",
                    "1",
                    "-1",
                    "99999999999999999999",
                    "<#C1|x>",
                    "<@U1>",
                    "--refresh",
                    "'",
                    '"',
                    "users",
                    "unlink",
                    "watch",
                    "https://x/y/z",
                ]
            ),
            max_size=6,
        ).map(" ".join),
    )
)
def test_parsing_any_text_gives_a_command_or_a_usage_error(text):
    try:
        parse_command(text, "https://gitlab.example.com")
    except UsageError as exc:
        assert exc.message and "\n" not in exc.message


def test_running_any_text_gives_a_reply(linked: Harness):
    services = build_services(linked.settings, retry=FAST_RETRY)
    loop = asyncio.new_event_loop()
    actor = Actor("T0TEAM", "UALICE", "C1")

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        st.lists(
            st.sampled_from(
                [
                    "list",
                    "show",
                    "key",
                    "sync",
                    "enable",
                    "pull",
                    "sync",
                    "config",
                    "group/app",
                    "group/secret",
                    "1",
                    "2",
                    "999",
                    "x" * 300,
                    "ü/ß",
                    "status",
                    "watching",
                    "approvals",
                    "whoami",
                    "help",
                    "users",
                    "unmute",
                    "unwatch",
                ]
            ),
            max_size=4,
        ).map(" ".join)
    )
    def reply_for(text):
        reply = loop.run_until_complete(run_text(text, actor, services))
        message = render(reply)  # every reply renders
        assert message.text
        if isinstance(reply, Problem):
            assert "Traceback" not in reply.message

    try:
        reply_for()
    finally:
        loop.run_until_complete(services.close())
        loop.close()


def test_garbage_through_http_keeps_the_server_up(linked: Harness):
    for text in [
        "\x00\x01",
        "list " + "a/" * 2000,
        "💥" * 500,
        "show group/app 1 2 3",
        "sync <https://evil.example/x|y>",
        "pull config",
    ]:
        assert linked.agent.command(text).status_code == 200
    linked.wait(lambda: len(linked.responses()) >= 6)
    assert all(r["response_type"] == "ephemeral" for r in linked.responses())
    assert linked.agent.command("help").status_code == 200
    linked.wait(lambda: any("Mirrorbot" in json.dumps(r) for r in linked.responses()))


def test_a_first_burst_of_requests_asks_slack_who_the_bot_is_once(linked: Harness):
    # auth.test was asked at start-up; 20 concurrent first requests ask nothing more.
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: linked.agent.command("help"), range(20)))
    assert {a.status_code for a in answers} == {200}
    linked.wait(lambda: len(linked.responses()) >= 20, timeout=10)
    assert len(linked.slack.of("auth.test")) == 1
