"""`watch P #channel`: only into a channel the caller is in and the bot can post to; a
channel is named by `<#C…|name>`, `#C…` or `#name`."""

from __future__ import annotations

from tests.fakes.slack import BOT_USER_ID
from tests.slack.conftest import Harness


def test_watch_into_a_channel_the_caller_is_not_in_is_refused(linked: Harness):
    linked.slack.add_channel("C0PRIV001", "incident-room", members=["UBOB"], private=True)
    linked.command("watch group/app <#C0PRIV001|incident-room>", channel="C1")
    linked.wait_response("you are not a member of <#C0PRIV001>")
    assert linked.slack.of("conversations.members")  # it asked Slack, and Slack said no
    linked.command("watching", channel="C0PRIV001", user="UBOB")
    linked.wait_response("This channel watches no project")


def test_watch_into_a_channel_without_the_bot_is_refused(linked: Harness):
    linked.slack.add_channel("C0NOBOT01", "team", members=["UALICE"], bot=False)
    linked.command("watch group/app #C0NOBOT01", channel="C1")
    linked.wait_response("I am not a member of <#C0NOBOT01>")
    linked.command("watching", channel="C0NOBOT01")
    linked.wait_response("This channel watches no project")


def test_watch_by_name_finds_the_channel_on_any_page(linked: Harness):
    for number in range(450):  # conversations.list answers 200 a page
        linked.slack.add_channel(f"CFILL{number:04d}", f"filler-{number}", members=[])
    members = [f"UAA{n:04d}" for n in range(450)] + ["UALICE"]  # alice sorts onto the 3rd page
    linked.slack.add_channel("C0REL0001", "release-alerts", members=members)
    linked.command("watch group/app #release-alerts", channel="C1")
    linked.wait_response("<#C0REL0001|release-alerts> now gets alerts for the mirrors of group/app")
    assert len(linked.slack.of("conversations.list")) == 3
    assert len(linked.slack.of("conversations.members")) == 3
    linked.command("watching", channel="C0REL0001")
    linked.wait_response("*group/app*")


def test_an_unknown_or_archived_channel_is_refused_in_one_line(linked: Harness):
    linked.command("watch group/app #no-such-channel", channel="C1")
    linked.wait_response("I cannot find #no-such-channel")
    linked.slack.add_channel("C0OLD0001", "old-team", members=["UALICE"])
    linked.slack.archive("C0OLD0001")
    linked.command("watch group/app <#C0OLD0001|old-team>", channel="C1")
    linked.wait_response("<#C0OLD0001> is archived")


def test_a_private_channel_the_bot_is_not_in_cannot_be_found(linked: Harness):
    linked.slack.add_channel("C0HIDE001", "hidden", members=["UALICE"], private=True, bot=False)
    linked.command("watch group/app #hidden", channel="C1")
    linked.wait_response("I cannot find #hidden: if it is a private channel, invite me")


def test_watching_here_checks_this_channel_too(linked: Harness):
    linked.slack.add_channel("C0HERE001", "here", members=["UALICE"], bot=False)
    linked.command("watch group/app", channel="C0HERE001")
    linked.wait_response("I am not a member of <#C0HERE001>")
    linked.slack.channel("C0HERE001").members.add(BOT_USER_ID)  # /invite @Mirrorbot
    linked.command("watch group/app", channel="C0HERE001")
    linked.wait_response("<#C0HERE001|here> now gets alerts")


def test_a_direct_message_is_no_channel_for_alerts(linked: Harness):
    linked.command("watch group/app", channel="D0DIRECT01")
    linked.wait_response("alerts go to a channel")


def test_watch_into_a_channel_shared_with_another_organisation_is_refused(linked: Harness):
    shared = linked.slack.add_channel("C0SHARED1", "vendor-collab", members=["UALICE"])
    shared.is_ext_shared = True
    linked.command("watch group/app #C0SHARED1", channel="C1")
    linked.wait_response("is shared with another organisation (Slack Connect)")
    linked.command("watching", channel="C0SHARED1")
    linked.wait_response("This channel watches no project")
