"""A change to a mirror: what it sets (for the approver to read), which approvals it needs,
and running it with its outcome (executed or failed) written to the audit log."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domain import audit
from bot.domain.audit import AuditEvent
from bot.domain.mirrors import Operation, OperationOutcome, OperationRequest, execute_operation
from bot.domain.monitor import forget_presence
from bot.gitlab.client import GitLabClient
from bot.gitlab.errors import GitLabError
from bot.gitlab.models import PullMirror, PushMirror
from bot.gitlab.scrub import MASK, scrub_url
from bot.store.db import transaction

MAX_VALUE_CHARS = 200
HIDDEN = "set (hidden)"

# Attribute → how a person reads its name; the order is the order the card lists them in.
_LABELS = {
    "url": "URL",
    "auth_method": "Authentication",
    "enabled": "Enabled",
    "keep_divergent_refs": "Keep divergent refs",
    "only_protected_branches": "Only protected branches",
    "mirror_branch_regex": "Branch filter",
    "mirror_trigger_builds": "Trigger pipelines",
    "only_mirror_protected_branches": "Only protected branches",
    "mirror_overwrites_diverged_branches": "Overwrite diverged branches",
}
_SECRETS = ("auth_user", "auth_password")  # never shown, only that they are set
_CODE = frozenset({"url", "mirror_branch_regex"})
_AUTH_METHODS = {"password": "password", "ssh_public_key": "SSH public key"}


@dataclass(frozen=True)
class AttributeChange:
    """One attribute a change sets, as a person reads it. Values are scrubbed: no secret."""

    label: str
    new: str
    old: str | None = None  # the value before (edits, toggles); None when there was none
    code: bool = False  # a URL or a pattern: shown verbatim in a code span

    @property
    def unchanged(self) -> bool:
        return self.old is not None and self.old == self.new

    def as_json(self) -> dict[str, Any]:
        return {"label": self.label, "new": self.new, "old": self.old, "code": self.code}

    @staticmethod
    def from_json(data: dict[str, Any]) -> AttributeChange:
        return AttributeChange(
            str(data["label"]),
            str(data["new"]),
            None if data.get("old") is None else str(data["old"]),
            bool(data.get("code")),
        )


def describe_change(
    request: OperationRequest, current: PushMirror | PullMirror | None
) -> tuple[AttributeChange, ...]:
    """Every attribute `request` sets, with its current value where there is one."""
    op, attributes = request.operation, request.attributes
    if op in (Operation.ENABLE, Operation.DISABLE):
        attributes = {"enabled": op is Operation.ENABLE}
    elif op not in (Operation.ADD, Operation.EDIT, Operation.PULL_CONFIG):
        return ()
    changes = []
    for key in sorted(attributes, key=_order):
        if key in _SECRETS:
            continue
        label = _LABELS.get(key)
        if label is None:  # an attribute no form of ours sets: name it, never show it
            changes.append(AttributeChange(key, HIDDEN))
            continue
        if key == "url":
            label = "Source URL" if op is Operation.PULL_CONFIG else "Target URL"
        old = _shown(key, getattr(current, key, None)) if current is not None else None
        changes.append(AttributeChange(label, _shown(key, attributes[key]), old, key in _CODE))
    secrets = [key for key in _SECRETS if attributes.get(key)]
    if secrets:
        which = " and ".join("username" if k == "auth_user" else "password" for k in secrets)
        changes.append(AttributeChange("Credentials", f"{which} {HIDDEN}"))
    return tuple(changes)


def implied_operations(
    request: OperationRequest, current: PushMirror | None
) -> frozenset[Operation]:
    """Listed operations an edit also performs: unticking Enabled is a disable."""
    enabled = request.attributes.get("enabled")
    if request.operation is not Operation.EDIT or current is None or enabled is None:
        return frozenset()
    if current.enabled and not enabled:
        return frozenset({Operation.DISABLE})
    if not current.enabled and enabled:
        return frozenset({Operation.ENABLE})
    return frozenset()


def approvals_needed(
    request: OperationRequest, current: PushMirror | None, required: Iterable[Operation]
) -> tuple[Operation, ...]:
    """The operations whose approval `request` needs: its own, then those it implies."""
    listed = frozenset(required)
    implied = sorted(implied_operations(request, current) - {request.operation})
    return tuple(op for op in (request.operation, *implied) if op in listed)


def without_unchanged_toggle(
    request: OperationRequest, current: PushMirror | None
) -> dict[str, Any]:
    """An edit's attributes, minus an `enabled` that changes nothing: the PUT must not
    toggle a mirror that someone else toggled meanwhile (that needs its own approval)."""
    attributes = dict(request.attributes)
    if (
        request.operation is Operation.EDIT
        and current is not None
        and attributes.get("enabled") == current.enabled
    ):
        del attributes["enabled"]
    return attributes


def _order(key: str) -> int:
    order = list(_LABELS)
    return order.index(key) if key in order else len(order)


def _shown(key: str, value: object) -> str:
    if key == "url":
        return _short(_without_query(scrub_url(str(value)) or "")) if value else "none"
    if key == "mirror_branch_regex":
        return _short(str(value)) if value else "none"
    if key == "auth_method":
        return _AUTH_METHODS.get(str(value), _short(str(value)))
    if isinstance(value, bool) or value is None:
        return "yes" if value else "no"
    return _short(str(value))


def _without_query(url: str) -> str:
    """A query string may carry a credential (`?private_token=…`) that scrubbing misses."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query=MASK)) if parts.query else url


def _short(text: str) -> str:
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


async def perform_change(
    gitlab: GitLabClient,
    request: OperationRequest,
    *,
    actor_id: str,
    sessions: async_sessionmaker[AsyncSession],
) -> OperationOutcome:
    try:
        outcome = await execute_operation(gitlab, request)
    except GitLabError as exc:
        await _audit(sessions, request, actor_id, AuditEvent.FAILED, exc.user_message)
        raise
    await _audit(sessions, request, actor_id, AuditEvent.EXECUTED, outcome.summary)
    if request.operation in (Operation.ADD, Operation.PULL_CONFIG):
        async with transaction(sessions) as session:  # the monitor looks at it afresh
            await forget_presence(session, request.project_id)
    return outcome


async def _audit(
    sessions: async_sessionmaker[AsyncSession],
    request: OperationRequest,
    actor_id: str,
    event: AuditEvent,
    result: str,
) -> None:
    async with transaction(sessions) as session:
        audit.record(
            session,
            actor=actor_id,
            event=event,
            operation=request.operation.value,
            project=request.project_path,
            mirror_id=request.mirror_id,
            result=result,
        )
