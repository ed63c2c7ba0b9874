"""Approvals whose run was interrupted (a crash, SIGTERM mid-run): find out from GitLab
what happened, so no request stays "approved, running…" for ever.

Where GitLab shows the outcome (a deleted mirror is gone, a disabled one is disabled) the
request is marked executed; where it shows the change did not happen, failed with nothing
changed; otherwise failed with the outcome unknown. Nothing is run again: the approver
approved a change then, not a retry at some later time.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from bot.domain.accounts import Accounts, SlackUser
from bot.domain.approvals import MIRRORBOT, Approval, ApprovalRefused, Approvals
from bot.domain.mirrors import Operation, OperationRequest
from bot.gitlab.client import GitLabClient
from bot.gitlab.errors import GitLabError, MirrorNotFound, PullMirrorNotConfigured

ASK_AGAIN = "nothing was changed — ask again if it is still wanted"


async def resolve_interrupted(
    approvals: Approvals, accounts: Accounts, service_gitlab: GitLabClient | None
) -> list[Approval]:
    """Resolve every approved request whose run outlived its lease; returns those resolved
    here (another replica's are its own to announce)."""
    resolved = []
    for approval, request in await approvals.claim_interrupted():
        requester = SlackUser(approval.team_id, approval.requester_id)
        gitlab = await accounts.gitlab_or_none(requester) or service_gitlab
        succeeded, result = await outcome_on_gitlab(gitlab, request)
        try:
            resolved.append(
                await approvals.finish(
                    approval.id, succeeded=succeeded, result=result, actor=MIRRORBOT
                )
            )
        except ApprovalRefused:
            continue  # its runner finished after all, and said so itself
    return resolved


async def outcome_on_gitlab(
    gitlab: GitLabClient | None, request: OperationRequest
) -> tuple[bool, str]:
    """(executed?, what GitLab shows) for a change that may or may not have been made."""
    if gitlab is None:
        return False, "outcome unknown: no GitLab token can check it — look in GitLab"
    try:
        return await _outcome(gitlab, request)
    except GitLabError as exc:
        return False, f"outcome unknown: GitLab could not be asked ({exc.user_message})"


async def _outcome(gitlab: GitLabClient, request: OperationRequest) -> tuple[bool, str]:
    op, ref, mirror_id, attributes = (
        request.operation,
        request.project,
        request.mirror_id,
        request.attributes,
    )
    if op is Operation.ADD:
        wanted = _place(str(attributes.get("url", "")))
        for mirror in await gitlab.list_push_mirrors(ref):
            if _place(mirror.url) == wanted:
                return True, f"GitLab shows push mirror {mirror.id} with that URL"
        return False, f"GitLab shows no push mirror with that URL; {ASK_AGAIN}"
    if op is Operation.PULL_CONFIG:
        try:
            pull = await gitlab.get_pull_mirror(ref)
        except PullMirrorNotConfigured:
            return False, f"GitLab shows no pull mirror; {ASK_AGAIN}"
        if _matches(pull, attributes, ignore=("url", "auth_user", "auth_password")) and (
            "url" not in attributes or _place(pull.url) == _place(str(attributes["url"]))
        ):
            return True, "GitLab shows the pull mirror configured as asked"
        return False, "outcome unknown: GitLab shows a pull mirror configured otherwise"
    if op is Operation.ROTATE:  # approved, but its rotation never left the approval
        return False, f"the rotation did not start; {ASK_AGAIN}"
    if op in (Operation.SYNC, Operation.PULL_SYNC):
        return False, "outcome unknown: GitLab does not say whether the sync was started"
    assert mirror_id is not None
    try:
        mirror = await gitlab.get_push_mirror(ref, mirror_id)
    except MirrorNotFound:
        if op is Operation.DELETE:
            return True, f"GitLab shows push mirror {mirror_id} deleted"
        return False, f"outcome unknown: push mirror {mirror_id} no longer exists"
    if op is Operation.DELETE:
        return False, f"GitLab still shows push mirror {mirror_id}; {ASK_AGAIN}"
    if op in (Operation.ENABLE, Operation.DISABLE):
        wanted_enabled = op is Operation.ENABLE
        state = "enabled" if mirror.enabled else "disabled"
        if mirror.enabled == wanted_enabled:
            return True, f"GitLab shows push mirror {mirror_id} {state}"
        return False, f"GitLab shows push mirror {mirror_id} still {state}; {ASK_AGAIN}"
    if _matches(mirror, attributes):
        return True, f"GitLab shows push mirror {mirror_id} as the edit set it"
    return False, f"GitLab does not show the edit of push mirror {mirror_id}; {ASK_AGAIN}"


def _matches(mirror: object, attributes: dict[str, object], ignore: tuple[str, ...] = ()) -> bool:
    return all(
        (getattr(mirror, key, None) or None) == (value or None)
        if not isinstance(value, bool)
        else bool(getattr(mirror, key, None)) == value
        for key, value in attributes.items()
        if key not in ignore
    )


def _place(url: str | None) -> tuple[str, str, str]:
    """Where a URL points, without its userinfo (GitLab shows it masked)."""
    parts = urlsplit(url or "")
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.path.rstrip("/")
