"""Mirrors as Block Kit: the list with per-mirror buttons, details, keys, pull mirror."""

from __future__ import annotations

from typing import Any

from bot.commands.actions import MirrorActions, MirrorRef, RotationActions
from bot.domain.causes import UNKNOWN, classify
from bot.domain.mirrors import ProjectMirrors
from bot.domain.subscriptions import PULL_KEY, MirrorObservation
from bot.gitlab.models import PullMirror, PushMirror
from bot.gitlab.refs import ProjectRef
from bot.slack.blocks.text import (
    MAX_ERROR_CHARS,
    SlackMessage,
    actions,
    button,
    code,
    confirm_dialog,
    context,
    escape,
    prose,
    section,
    shorten,
    slack_ago,
    slack_date,
    status_label,
)

MIRRORS_PER_PAGE = 20  # two blocks each: 20 mirrors + header, pull and paging stay under 50


def failing_first(mirrors: list[PushMirror]) -> list[PushMirror]:
    return sorted(mirrors, key=lambda m: (not (m.enabled and m.is_failed), m.id))


def mirror_buttons(
    project: ProjectRef | int, mirror: PushMirror, *, details: bool = True
) -> list[dict[str, Any]]:
    """Only what can be done: no Sync on a disabled mirror (GitLab refuses it), no Details
    inside the details (`details=False`), no Rotate of a disabled one (its new mirror could
    not be synced to prove the new credentials)."""
    value = MirrorRef.to(_ref(project), mirror.id).dump()
    buttons = []
    if mirror.enabled:
        buttons.append(button("Sync now", MirrorActions.SYNC, value, "primary"))
        buttons.append(button("Disable", MirrorActions.DISABLE, value))
    else:
        buttons.append(button("Enable", MirrorActions.ENABLE, value, "primary"))
    if mirror.has_public_key:
        buttons.append(button("Public key", MirrorActions.PUBLIC_KEY, value))
    if details:
        buttons.append(button("Details", MirrorActions.DETAILS, value))
    if mirror.enabled:
        buttons.append(button("Rotate credentials", RotationActions.ROTATE, value))
    buttons.append(
        button(
            "Delete",
            MirrorActions.DELETE,
            value,
            "danger",
            confirm_dialog(
                "Delete this mirror?",
                f"Push mirror {mirror.id} to {code(mirror.url or '?')} will be removed.",
                "Delete",
            ),
        )
    )
    return buttons


def push_mirror_summary(mirror: PushMirror) -> str:
    lines = [
        f"*{mirror.id}* · {status_label(mirror.update_status, mirror.enabled)} · "
        + code(mirror.url or "URL hidden by GitLab"),
        f"last success {slack_ago(mirror.last_successful_update_at)}",
    ]
    if mirror.last_error and mirror.update_status != "finished":
        lines.append(f"> {prose(shorten(mirror.last_error, MAX_ERROR_CHARS))}")
    return "\n".join(lines)


def likely_cause(last_error: str | None, *, with_fix: bool = True) -> str | None:
    """ "*Likely cause: …* fix" for an error the cause table recognises, else None."""
    cause = classify(last_error)
    if cause is UNKNOWN:
        return None
    return f"*Likely cause: {cause.title}.* {cause.fix}" if with_fix else cause.title


def sync_result_summary(mirror: PushMirror, settled: bool) -> str:
    """A mirror in a sync reply: its status only once GitLab has run this sync to its end
    (until then GitLab may still show the previous update's result)."""
    if settled or mirror.is_in_progress:
        status = status_label(mirror.update_status, mirror.enabled)
    else:
        status = ":hourglass: sync requested"
    lines = [f"*{mirror.id}* · {status} · `{escape(mirror.url or 'URL hidden by GitLab')}`"]
    if settled and mirror.is_failed:
        lines.append(f"> {escape(shorten(mirror.last_error or 'no error given', MAX_ERROR_CHARS))}")
        if cause := likely_cause(mirror.last_error):
            lines.append(cause)
    elif settled:
        lines.append(f"synced {slack_ago(mirror.last_successful_update_at)}")
    return "\n".join(lines)


def pull_mirror_summary(pull: PullMirror) -> str:
    text = (
        f"*Pull mirror* · {status_label(pull.update_status, pull.enabled)} · "
        f"{code(pull.url or '?')}\nlast success {slack_ago(pull.last_successful_update_at)}"
    )
    if pull.last_error and pull.update_status != "finished":
        text += f"\n> {prose(shorten(pull.last_error, MAX_ERROR_CHARS))}"
    return text


def mirror_row(project: ProjectRef | int, mirror: PushMirror) -> list[dict[str, Any]]:
    """A mirror's summary and its buttons; `block_id` lets a click find its row again."""
    return [
        section(push_mirror_summary(mirror)),
        actions(f"mirror-{mirror.id}", *mirror_buttons(project, mirror)),
    ]


def _ref(project: ProjectRef | int) -> ProjectRef:
    return project if isinstance(project, ProjectRef) else ProjectRef(str(project))


def mirror_list(mirrors: ProjectMirrors, offset: int = 0) -> SlackMessage:
    project = mirrors.project
    ordered = failing_first(mirrors.push_mirrors)
    page = ordered[offset : offset + MIRRORS_PER_PAGE]
    failing = sum(1 for m in ordered if m.enabled and m.is_failed)
    headline = (
        f"*{escape(str(project))}* — {len(ordered)} push "
        f"mirror{'s' if len(ordered) != 1 else ''}"
        + (f", :red_circle: {failing} failing" if failing else "")
    )
    blocks: list[dict[str, Any]] = [section(headline)]
    for mirror in page:
        blocks.extend(mirror_row(project, mirror))
    if not ordered:
        blocks.append(
            context(f"No push mirrors. Add one with `/mirror add {escape(str(project))}`.")
        )
    if offset + MIRRORS_PER_PAGE < len(ordered) or offset > 0:
        paging = []
        if offset > 0:
            back = MirrorRef.to(project, offset=max(0, offset - MIRRORS_PER_PAGE))
            paging.append(button("◀ Previous", f"{MirrorActions.PAGE}-prev", back.dump()))
        if offset + MIRRORS_PER_PAGE < len(ordered):
            more = MirrorRef.to(project, offset=offset + MIRRORS_PER_PAGE)
            paging.append(button("Next ▶", MirrorActions.PAGE, more.dump()))
        blocks.append(context(f"Mirrors {offset + 1}–{offset + len(page)} of {len(ordered)}"))
        blocks.append(actions("paging", *paging))
    if mirrors.pull_mirror is not None:
        blocks.append(section(pull_mirror_summary(mirrors.pull_mirror)))
        blocks.append(
            actions(
                "pull",
                button("Start pull", MirrorActions.PULL_SYNC, MirrorRef.to(project).dump()),
            )
        )
    elif mirrors.pull_note:
        blocks.append(context(mirrors.pull_note))
    return SlackMessage(
        f"{project}: {len(ordered)} push mirrors" + (f", {failing} failing" if failing else ""),
        blocks,
    )


def mirror_details(project: ProjectRef, mirror: PushMirror) -> SlackMessage:
    fingerprints = ", ".join(f"`{escape(k.fingerprint_sha256)}`" for k in mirror.host_keys)
    branch_filter = (
        "protected branches only"
        if mirror.only_protected_branches
        else f"`{escape(mirror.mirror_branch_regex)}`"
        if mirror.mirror_branch_regex
        else "all branches"
    )
    divergent = (
        "kept (diverged refs are left alone)" if mirror.keep_divergent_refs else "overwritten"
    )
    fields = [
        ("Status", status_label(mirror.update_status, mirror.enabled)),
        ("Auth method", "SSH key" if mirror.auth_method == "ssh_public_key" else "password"),
        ("Branches", branch_filter),
        ("Divergent refs", divergent),
        ("Last update", slack_date(mirror.last_update_at)),
        ("Last started", slack_date(mirror.last_update_started_at)),
        ("Last success", slack_date(mirror.last_successful_update_at)),
        ("Host keys", fingerprints or "none pinned"),
    ]
    blocks: list[dict[str, Any]] = [
        section(
            f"*Push mirror {mirror.id}* of *{escape(str(project))}*\n{code(mirror.url or '?')}"
        ),
        {
            "type": "section",
            "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"[:2000]} for k, v in fields],
        },
    ]
    if mirror.last_error:
        blocks.append(section(f"*Last error*\n```{escape(shorten(mirror.last_error, 2500))}```"))
        if mirror.is_failed and (cause := likely_cause(mirror.last_error)):
            blocks.append(section(cause))
    blocks.append(actions(f"mirror-{mirror.id}", *mirror_buttons(project, mirror, details=False)))
    return SlackMessage(f"Push mirror {mirror.id} of {project}: {mirror.update_status}", blocks)


def public_key(project: ProjectRef, mirror_id: int, key: str) -> SlackMessage:
    return SlackMessage(
        f"SSH public key of mirror {mirror_id}",
        [
            section(
                f"SSH public key of push mirror {mirror_id} of "
                f"*{escape(str(project))}* — add it as a deploy key with write "
                f"access on the target:\n```{escape(key)}```"
            )
        ],
    )


def pull_details(project: ProjectRef, pull: PullMirror) -> SlackMessage:
    options = [
        ("Trigger pipelines", "yes" if pull.mirror_trigger_builds else "no"),
        ("Protected branches only", "yes" if pull.only_mirror_protected_branches else "no"),
        (
            "Overwrite diverged branches",
            "yes" if pull.mirror_overwrites_diverged_branches else "no",
        ),
        (
            "Branch filter",
            f"`{escape(pull.mirror_branch_regex)}`" if pull.mirror_branch_regex else "all branches",
        ),
        ("Last update", slack_date(pull.last_update_at)),
        ("Last success", slack_date(pull.last_successful_update_at)),
    ]
    blocks: list[dict[str, Any]] = [
        section(f"*{escape(str(project))}* · {pull_mirror_summary(pull)}"),
        {
            "type": "section",
            "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in options],
        },
        actions(
            "pull",
            button("Start pull", MirrorActions.PULL_SYNC, MirrorRef.to(project).dump()),
        ),
    ]
    return SlackMessage(f"Pull mirror of {project}: {pull.update_status}", blocks)


def observation_line(o: MirrorObservation, *, detailed: bool = False) -> str:
    """One watched mirror as the monitor last saw it (status and App Home)."""
    name = "pull mirror" if o.mirror_key == PULL_KEY else f"mirror {o.mirror_id}"
    separator = "\n" if detailed else " · "
    text = (
        f"{status_label(o.update_status, o.enabled)} *{escape(o.project_path)}* {name} "
        f"{code(shorten(o.url or '?', 80))}{separator}last success "
        f"{slack_ago(o.last_successful_update_at)}"
    )
    if detailed:
        text += f" · checked {slack_ago(o.observed_at)}"
    if o.is_failing and o.last_error:
        error = prose(shorten(o.last_error, 200 if detailed else 120))
        text += f"\n> {error}" if detailed else f" · {error}"
        if cause := likely_cause(o.last_error, with_fix=detailed):
            text += f"\n{cause}" if detailed else f" · likely cause: {cause}"
    return text
