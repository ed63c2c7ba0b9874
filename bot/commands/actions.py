"""What a button is, for Slack and the console alike: its action id and the small payload
it carries (an id, never a whole object or a secret). The Slack adapter renders these as
Block Kit buttons; the console as lettered choices."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class MirrorActions(StrEnum):
    SYNC = "mirror-sync"
    ENABLE = "mirror-enable"
    DISABLE = "mirror-disable"
    PUBLIC_KEY = "mirror-public-key"
    DETAILS = "mirror-details"
    DELETE = "mirror-delete"
    PAGE = "mirror-list-page"
    PULL_SYNC = "pull-sync"


class RotationActions(StrEnum):
    """Rotate and Re-create open the rotate form for a mirror (MirrorRef); Key installed
    switches an SSH rotation (RotationRef)."""

    ROTATE = "mirror-rotate"
    RECREATE = "mirror-recreate"
    KEY_INSTALLED = "rotation-key-installed"


class ApprovalActions(StrEnum):
    APPROVE = "approval-approve"
    REJECT = "approval-reject"
    CANCEL = "approval-cancel"


class AlertActions(StrEnum):
    """Alerts reuse the mirror buttons (Retry sync is MirrorActions.SYNC); only Mute is new."""

    MUTE = "alert-mute"


class LoginActions(StrEnum):
    """The device login's message: open GitLab to approve (a link button, acked only),
    fall back to pasting a token (today's modal), or start again after it ended."""

    OPEN_GITLAB = "login-open-gitlab"
    USE_TOKEN = "login-use-token"  # noqa: S105 - an action id
    START_AGAIN = "login-start-again"


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


class RotationRef(_Payload):
    rotation_id: str
