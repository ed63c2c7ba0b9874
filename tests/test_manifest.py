"""The manifest and the app cannot drift apart: command, events, URLs and scopes."""

import re
from pathlib import Path

import yaml

from bot.slack.ids import EVENTS, REQUEST_PATH, SLASH_COMMAND

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = yaml.safe_load((ROOT / "manifest.yml").read_text())

# The scope each Web API method the bot calls needs (Slack's method reference).
SCOPES_BY_METHOD = {
    "chat_postMessage": {"chat:write"},
    "chat_update": {"chat:write"},
    "chat_postEphemeral": {"chat:write"},
    "users_conversations": {"channels:read", "groups:read"},
    "conversations_info": {"channels:read", "groups:read"},
    "conversations_list": {"channels:read", "groups:read"},
    "conversations_members": {"channels:read", "groups:read"},
    "views_open": set(),
    "views_update": set(),
    "views_publish": set(),
    "auth_test": set(),
    "conversations_open": {"im:write"},
    "files_upload_v2": {"files:write"},
}
# Scopes no method call shows: slash commands, and announcing a change in a public channel
# the bot never joined (alerts need the bot in the channel: `watch` checks).
SCOPES_WITHOUT_A_CALL = {"commands", "chat:write.public"}


def methods_the_code_calls() -> set[str]:
    source = "\n".join(p.read_text() for p in (ROOT / "bot").rglob("*.py"))
    return set(re.findall(r"\bclient\.([a-z]+_[A-Za-z]+(?:_v[0-9])?)\(", source))


def test_the_slash_command_is_the_one_the_app_registers():
    [command] = MANIFEST["features"]["slash_commands"]
    assert command["command"] == SLASH_COMMAND
    assert command["should_escape"] is True  # channels arrive as <#C…|name>, users as <@U…>
    assert len(command["usage_hint"]) <= 1000 and len(command["description"]) <= 2000


def test_every_request_url_is_the_bolt_endpoint():
    settings = MANIFEST["settings"]
    urls = [
        MANIFEST["features"]["slash_commands"][0]["url"],
        settings["interactivity"]["request_url"],
        settings["event_subscriptions"]["request_url"],
    ]
    assert all(url.endswith(REQUEST_PATH) for url in urls)
    assert settings["interactivity"]["is_enabled"] is True


def test_events_match_the_listeners():
    assert tuple(MANIFEST["settings"]["event_subscriptions"]["bot_events"]) == EVENTS
    assert MANIFEST["features"]["app_home"]["home_tab_enabled"] is True


def test_only_the_scopes_the_code_uses():
    called = methods_the_code_calls()
    unknown = called - set(SCOPES_BY_METHOD)
    assert not unknown, f"add the scopes of {unknown} to SCOPES_BY_METHOD and the manifest"
    needed = set().union(*(SCOPES_BY_METHOD[m] for m in called)) | SCOPES_WITHOUT_A_CALL
    assert set(MANIFEST["oauth_config"]["scopes"]["bot"]) == needed


def test_manifest_field_limits():
    info = MANIFEST["display_information"]
    assert len(info["name"]) <= 35 and len(info["description"]) <= 140
    assert 174 <= len(info["long_description"]) <= 4000
    assert re.fullmatch(r"[a-z0-9._-]{1,80}", MANIFEST["features"]["bot_user"]["display_name"])
