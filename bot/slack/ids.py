"""Every action, callback and block id in one place, and the small payloads that ride in
button values and `private_metadata` (an id, never a whole object or a secret)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

SLASH_COMMAND = "/mirror"
EVENTS = ("app_home_opened",)
REQUEST_PATH = "/slack/events"  # commands, interactivity and events share it


class MirrorActions(StrEnum):
    SYNC = "mirror-sync"
    ENABLE = "mirror-enable"
    DISABLE = "mirror-disable"
    PUBLIC_KEY = "mirror-public-key"
    DETAILS = "mirror-details"
    DELETE = "mirror-delete"
    PAGE = "mirror-list-page"
    PULL_SYNC = "pull-sync"


class ApprovalActions(StrEnum):
    APPROVE = "approval-approve"
    REJECT = "approval-reject"
    CANCEL = "approval-cancel"


class AlertActions(StrEnum):
    """Alerts reuse the mirror buttons (Retry sync is MirrorActions.SYNC); only Mute is new."""

    MUTE = "alert-mute"


class Views(StrEnum):
    LOGIN = "view-login"
    ADD_PUSH_MIRROR = "view-add-push-mirror"
    EDIT_PUSH_MIRROR = "view-edit-push-mirror"
    PULL_CONFIG = "view-pull-config"


class Fields(StrEnum):
    """block_id == action_id for every input, so errors and values use one name."""

    TOKEN = "token"  # noqa: S105 - a field name, not a secret
    URL = "url"
    AUTH_METHOD = "auth_method"
    OPTIONS = "options"
    BRANCH_REGEX = "mirror_branch_regex"
    AUTH_USER = "auth_user"
    AUTH_PASSWORD = "auth_password"  # noqa: S105 - a field name


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    def dump(self) -> str:
        return self.model_dump_json(exclude_none=True)


class MirrorRef(_Payload):
    """A button's target: the project by id (paths change) and the push mirror."""

    project_id: int
    mirror_id: int | None = None
    offset: int | None = None


class ApprovalRef(_Payload):
    request_id: str


class FormContext(_Payload):
    """`private_metadata` of a modal: where the command was typed and what it is about."""

    channel_id: str
    project: str | None = None
    mirror_id: int | None = None
