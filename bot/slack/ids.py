"""Slack's own ids: the slash command, events, views and form fields, and the context a
modal carries in `private_metadata`. Button action ids and payloads are not Slack's:
they live in `bot/commands/actions.py`, shared with the console."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

SLASH_COMMAND = "/mirror"
EVENTS = ("app_home_opened",)
REQUEST_PATH = "/slack/events"  # commands, interactivity and events share it


class Views(StrEnum):
    LOGIN = "view-login"
    ADD_PUSH_MIRROR = "view-add-push-mirror"
    EDIT_PUSH_MIRROR = "view-edit-push-mirror"
    PULL_CONFIG = "view-pull-config"
    ROTATE = "view-rotate"


class Fields(StrEnum):
    """block_id == action_id for every input, so errors and values use one name."""

    TOKEN = "token"  # noqa: S105 - a field name, not a secret
    URL = "url"
    AUTH_METHOD = "auth_method"
    OPTIONS = "options"
    BRANCH_REGEX = "mirror_branch_regex"
    AUTH_USER = "auth_user"
    AUTH_PASSWORD = "auth_password"  # noqa: S105 - a field name
    NEW_USERNAME = "new_username"
    NEW_PASSWORD = "new_password"  # noqa: S105 - a field name


class FormContext(BaseModel):
    """`private_metadata` of a modal: where the command was typed and what it is about."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    channel_id: str
    project: str | None = None
    mirror_id: int | None = None

    def dump(self) -> str:
        return self.model_dump_json(exclude_none=True)
