"""Every command result as a Slack message (pure: data in, payload out)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.commands.actions import ApprovalActions, ApprovalRef
from bot.commands.results import (
    AccountInfo,
    ApprovalDecided,
    ApprovalNeeded,
    ChangeMade,
    DeviceLoginFinished,
    DeviceLoginStarted,
    Help,
    Info,
    InventoryReport,
    LinkedUsers,
    MirrorDetails,
    MirrorList,
    Muted,
    PendingApprovals,
    Problem,
    PublicKeyInfo,
    PullDetails,
    Reply,
    RotationProgress,
    StatusReport,
    SyncStarted,
    Watching,
)
from bot.domain.approvals import Approval, Status
from bot.domain.changes import AttributeChange
from bot.domain.mirrors import Operation
from bot.domain.subscriptions import SubscriptionInfo
from bot.slack.blocks import fleet as fleet_blocks
from bot.slack.blocks import login as login_blocks
from bot.slack.blocks import mirrors as mirror_blocks
from bot.slack.blocks.notices import channel_refusal
from bot.slack.blocks.rotations import rotation_progress
from bot.slack.blocks.text import (
    MAX_BLOCKS,
    SlackMessage,
    actions,
    button,
    code,
    context,
    escape,
    prose,
    section,
    shorten,
    slack_ago,
    slack_date,
)

HELP_EXAMPLES = [
    ("/mirror list group/project", "push mirrors and the pull mirror, with buttons"),
    ("/mirror show group/project 12", "one mirror in full"),
    ("/mirror sync group/project [12]", "sync one mirror, or all; the reply follows it"),
    ("/mirror enable|disable|delete group/project 12", "change a mirror"),
    ("/mirror add group/project", "a form to add a push mirror"),
    ("/mirror edit group/project 12", "a form to edit one"),
    ("/mirror key group/project 12", "the SSH public key to install as a deploy key"),
    ("/mirror pull group/project", "the pull mirror; `pull sync`, `pull config`"),
    ("/mirror watch group/project [#channel]", "alerts when its mirrors fail"),
    ("/mirror unwatch group/project · watching · unmute P 12", "subscriptions and mutes"),
    ("/mirror status [--refresh]", "health of every watched mirror, failing first"),
    (
        "/mirror watch group/ [#channel]",
        "every project of a group and its subgroups, now and later",
    ),
    ("/mirror inventory group [--csv]", "every mirror of a group: summary, then a CSV file"),
    ("/mirror digest 09:00 [Europe/Berlin] [always] · digest off", "a daily digest here"),
    ("/mirror approvals", "requests waiting for a second person"),
    ("/mirror rotate group/project 12", "new credentials or key: new mirror first, old deleted"),
    (
        "/mirror login · logout · whoami",
        "link your GitLab account, so that the bot acts as you",
    ),
]


def render(reply: Reply) -> SlackMessage:
    renderer = _RENDERERS[type(reply)]
    return renderer(reply)


def problem(reply: Problem) -> SlackMessage:
    text = f":warning: {prose(reply.message)}"
    if reply.usage:
        text += f"\nUsage: `{reply.usage}`"
    return SlackMessage(reply.message, [section(text)])


def info(reply: Info) -> SlackMessage:
    return SlackMessage(reply.text, [section(reply.text)])


def help_message(_: Help) -> SlackMessage:
    lines = "\n".join(f"`{cmd}` — {what}" for cmd, what in HELP_EXAMPLES)
    return SlackMessage(
        "Mirrorbot commands",
        [
            section(
                "*Mirrorbot* runs your GitLab mirrors as you, with your own GitLab account.\n"
                + lines
            ),
            context(
                "Projects can be a numeric id, a path like `group/sub/project`, or a pasted "
                "project URL."
            ),
        ],
    )


def account(reply: AccountInfo) -> SlackMessage:
    link = reply.link
    if link is None:
        return SlackMessage(
            "not linked",
            [section("You have no GitLab account linked. Link one with `/mirror login`.")],
        )
    scopes = ", ".join(link.scopes) or "unknown"
    note = " (read-only: changes need a token with `api`)" if link.read_only else ""
    if link.kind == "oauth":
        how = (
            f"GitLab OAuth login, scopes: {scopes}, access token until "
            f"{slack_date(link.access_expires_at)}, renewed automatically"
        )
        if link.broken:
            how = "GitLab OAuth login, *ended*: run `/mirror login` again"
    else:
        expiry = f", expires {link.expires_at.isoformat()}" if link.expires_at else ""
        how = f"personal access token, scopes: {scopes}{expiry}"
    return SlackMessage(
        f"linked to {link.gitlab_username}",
        [section(f"You are linked to GitLab user *{escape(link.gitlab_username)}* ({how}){note}.")],
    )


def change_made(reply: ChangeMade) -> SlackMessage:
    request = reply.request
    by = f"<@{reply.actor_id}>"
    approved = f", approved by <@{reply.approver_id}>" if reply.approver_id else ""
    text = (
        f":white_check_mark: {by} {prose(reply.outcome.summary)} in "
        f"*{escape(request.project_path)}*{approved}"
    )
    blocks: list[dict[str, Any]] = [section(text)]
    mirror = reply.outcome.push_mirror
    if mirror is not None:
        blocks.extend(mirror_blocks.mirror_row(request.project, mirror))
    return SlackMessage(f"{prose(reply.outcome.summary)} in {request.project_path}", blocks)


def sync_progress(reply: SyncStarted, finished: bool = False) -> SlackMessage:
    """The sync reply; re-rendered as each mirror moves. It says "synced" only for what
    GitLab reported finished, and shows a failure with its error and likely cause."""
    path = escape(str(reply.project))
    count = len(reply.mirrors)
    mirrors = f"{count} push mirror{'s' if count != 1 else ''} of *{path}*"
    if reply.failed:
        failed = ", ".join(str(m.id) for m in reply.failed)
        headline = (
            f":red_circle: The sync <@{reply.actor_id}> requested failed: "
            f"mirror{'s' if len(reply.failed) != 1 else ''} {failed} of *{path}*"
        )
    elif reply.mirrors and reply.all_settled:
        headline = f":white_check_mark: <@{reply.actor_id}> synced {mirrors}"
    else:
        headline = f":arrows_counterclockwise: <@{reply.actor_id}> requested a sync of {mirrors}"
    blocks: list[dict[str, Any]] = [section(headline)]
    for mirror in reply.mirrors[: MAX_BLOCKS - 4]:
        blocks.append(
            section(mirror_blocks.sync_result_summary(mirror, mirror.id in reply.settled))
        )
    if reply.skipped:
        blocks.append(context(*(prose(line) for line in reply.skipped[:10])))
    if not reply.all_settled:
        blocks.append(
            context(
                "Following the sync… GitLab may delay it by up to 5 minutes if the mirror "
                "ran recently."
                if not finished
                else "GitLab has not reported the result yet: see "
                f"`/mirror show {path} {_first_unsettled(reply)}` later."
            )
        )
    outcome = {
        m.id: ("requested" if m.id not in reply.settled else m.update_status) for m in reply.mirrors
    }
    return SlackMessage(
        f"sync of {reply.project}: "
        + ", ".join(f"{mirror_id} {status}" for mirror_id, status in outcome.items()),
        blocks,
    )


def _first_unsettled(reply: SyncStarted) -> int:
    return next(m.id for m in reply.mirrors if m.id not in reply.settled)


def sync_started(reply: SyncStarted) -> SlackMessage:
    return sync_progress(reply)


def approval_card(approval: Approval) -> SlackMessage:
    what = f"*{approval.operation.verb}*{_target(approval)} in *{escape(approval.project_path)}*"
    blocks: list[dict[str, Any]] = [
        section(f":raised_hand: <@{approval.requester_id}> asks to {what}")
    ]
    if approval.changes:
        blocks.append(section("*What this change sets*\n" + change_lines(approval.changes)))
    why = [
        f"This {approval.operation.value} {_IMPLIES.get(op, op.value)}, so it needs the "
        f"approval that `{op.value}` needs."
        for op in approval.implied_approvals
    ]
    if approval.status is Status.PENDING:
        blocks.append(
            context(
                *why,
                "Needs approval by another linked user, a different GitLab user with the "
                f"Maintainer role · expires {slack_date(approval.expires_at)}",
            )
        )
        blocks.append(approval_buttons(approval))
    else:
        if why:
            blocks.append(context(*why))
        blocks.append(section(approval_outcome(approval)))
    return SlackMessage(
        f"approval request: {approval.operation.verb}{_target(approval, plain=True)} in "
        f"{approval.project_path} ({approval.status.value})",
        blocks,
    )


_IMPLIES = {Operation.DISABLE: "disables the mirror", Operation.ENABLE: "enables the mirror"}


def _target(approval: Approval, *, plain: bool = False) -> str:
    """The verb names the kind of mirror ("delete push mirror"); this adds which one."""
    if approval.mirror_id is None:
        return ""
    if plain or not approval.mirror_url:
        return f" {approval.mirror_id}"
    return f" {approval.mirror_id} ({code(approval.mirror_url)})"


def change_lines(changes: tuple[AttributeChange, ...]) -> str:
    """One line per attribute: `old → new` for edits; URLs and patterns in code spans."""
    lines = []
    for change in changes:
        new = _shown(change, change.new)
        if change.old is None:
            value = new
        elif change.unchanged:
            value = f"{new} (unchanged)"
        else:
            value = f"{_shown(change, change.old)} → *{new}*"
        lines.append(f"• {escape(change.label)}: {value}")
    return "\n".join(lines)


def _shown(change: AttributeChange, value: str) -> str:
    return code(value) if change.code and value != "none" else escape(value)


def approval_outcome(approval: Approval) -> str:
    """The card's last line once decided. An approved change runs with the requester's
    token, so the card says both: who approved, and whose token it ran with."""
    result = f": {prose(approval.result)}" if approval.result else ""
    approved = f"approved by <@{approval.approver_id}>" if approval.approver_id else ""
    ran = f"{approved}, ran with <@{approval.requester_id}>'s GitLab token"
    if approval.status is Status.EXECUTED:
        return f":white_check_mark: *executed* — {ran}{result}"
    if approval.status is Status.FAILED:
        return f":x: *failed* — {ran}{result}"
    if approval.status is Status.APPROVED:
        return (
            f":hourglass_flowing_sand: {approved}, running with "
            f"<@{approval.requester_id}>'s GitLab token…"
        )
    if approval.status is Status.REJECTED:
        return f":no_entry: rejected by <@{approval.approver_id}>"
    if approval.status is Status.CANCELLED:
        return ":heavy_minus_sign: cancelled by the requester"
    return ":hourglass: expired without a decision"


def interrupted_notice(approval: Approval) -> SlackMessage:
    """To the requester, when a run the bot lost track of (a crash) has been resolved."""
    outcome = "went through" if approval.status is Status.EXECUTED else "did not complete"
    text = (
        f"Your request to {approval.operation.verb}{_target(approval, plain=True)} in "
        f"*{escape(approval.project_path)}* was interrupted while it ran (Mirrorbot "
        f"restarted) and {outcome}: {prose(approval.result or 'outcome unknown')}"
    )
    return SlackMessage(text, [section(text)])


def approval_needed(reply: ApprovalNeeded) -> SlackMessage:
    return approval_card(reply.approval)


def pending_approvals(reply: PendingApprovals) -> SlackMessage:
    if not reply.approvals:
        return SlackMessage("no pending approvals", [section("No approval requests are waiting.")])
    blocks: list[dict[str, Any]] = [section("*Waiting for approval*")]
    # Each entry carries Approve, so it shows what the card shows: the mirror's URL and
    # every attribute the change sets (a request made in a DM has no card anyone else sees).
    shown = reply.approvals[: (MAX_BLOCKS - 2) // 2]
    for approval in shown:
        changes = f"\n{change_lines(approval.changes)}" if approval.changes else ""
        blocks.append(
            section(
                f"<@{approval.requester_id}>: {approval.operation.verb}"
                f"{_target(approval)} in *{escape(approval.project_path)}* — "
                f"expires {slack_date(approval.expires_at)}{changes}"
            )
        )
        blocks.append(approval_buttons(approval))
    if len(reply.approvals) > len(shown):
        blocks.append(context(f"{len(reply.approvals) - len(shown)} more not shown"))
    return SlackMessage(f"{len(reply.approvals)} pending approvals", blocks)


def approval_buttons(approval: Approval) -> dict[str, Any]:
    value = ApprovalRef(request_id=approval.id).dump()
    return actions(
        f"approval-{approval.id}",
        button("Approve", ApprovalActions.APPROVE, value, "primary"),
        button("Reject", ApprovalActions.REJECT, value, "danger"),
        button("Cancel", ApprovalActions.CANCEL, value),
    )


def approval_decided(reply: ApprovalDecided) -> SlackMessage:
    return approval_card(reply.approval)


def muted(reply: Muted) -> SlackMessage:
    name = "the pull mirror" if reply.mirror_id is None else f"mirror {reply.mirror_id}"
    unmute = "pull" if reply.mirror_id is None else str(reply.mirror_id)
    text = (
        f":mute: <@{reply.actor_id}> muted alerts for {name} of *{escape(reply.project_path)}* "
        f"here until {slack_date(reply.until)} — `/mirror unmute {reply.project_path} "
        f"{unmute}` ends it"
    )
    return SlackMessage(text, [section(text)])


def watching(reply: Watching) -> SlackMessage:
    if not reply.subscriptions and not reply.mutes and not reply.groups:
        return SlackMessage(
            "this channel watches nothing",
            [section("This channel watches no project. Start with `/mirror watch group/project`.")],
        )
    blocks: list[dict[str, Any]] = []
    if reply.groups:
        lines = "\n".join(
            f"• group *{escape(g.group_path)}/* — {g.project_count} projects (by <@{g.created_by}>)"
            for g in reply.groups[:50]
        )
        blocks.append(section(f"*Groups this channel watches*\n{lines}"))
    # A group's projects are counted above; broken ones are still listed, to be fixed.
    direct = [
        s for s in reply.subscriptions if s.group_subscription_id is None or s.broken_at is not None
    ]
    if direct:
        lines = "\n".join(_subscription_line(s) for s in direct[:100])
        blocks.append(section(f"*This channel watches*\n{lines}"))
    if reply.mutes:
        lines = "\n".join(
            f"• project {m.project_id}, mirror {m.mirror_key.removeprefix('push:')}"
            f" — muted by <@{m.muted_by}> until {slack_date(m.muted_until)}"
            for m in reply.mutes[:50]
        )
        blocks.append(section(f"*Muted*\n{lines}"))
    return SlackMessage(f"watching {len(reply.subscriptions)} projects", blocks)


def _subscription_line(subscription: SubscriptionInfo) -> str:
    line = f"• *{escape(subscription.project_path)}* (by <@{subscription.created_by}>)"
    if subscription.broken_at is None:
        return line
    return (
        f"{line} — :warning: *broken* since {slack_date(subscription.broken_at)}: "
        f"{channel_refusal(subscription.broken_reason)}; no alerts reach this channel. Invite "
        f"me (`/invite @Mirrorbot`) and `/mirror watch {escape(subscription.project_path)}` "
        "again, or watch it elsewhere"
    )


def status_report(reply: StatusReport) -> SlackMessage:
    rows = sorted(
        reply.observations, key=lambda o: (not o.is_failing, o.project_path, o.mirror_key)
    )
    failing = [o for o in rows if o.is_failing]
    age = (
        f"as of {slack_ago(reply.oldest_observation)}"
        if reply.oldest_observation
        else "not observed yet — run `/mirror status --refresh`"
    )
    projects = (
        f"*Mirror health* of {reply.watched_projects} watched project"
        f"{'s' if reply.watched_projects != 1 else ''}: "
    )
    if not rows and not reply.refreshed and reply.oldest_observation is None:
        # "0 mirrors, 0 failing" would claim a health nobody has looked at yet.
        header = projects + "nothing has been checked yet — run `/mirror status --refresh`"
    else:
        header = projects + (
            f"{len(rows)} mirrors, {len(failing)} failing "
            f"({'just refreshed' if reply.refreshed else age})"
        )
    blocks: list[dict[str, Any]] = [section(header)]
    if reply.unchecked:
        blocks.append(
            section(
                ":warning: *Not checked* — I cannot read these projects:\n"
                + "\n".join(
                    f"• *{escape(u.project_path)}* — {escape(shorten(u.what, 200))} "
                    f"(since {slack_date(u.since)})"
                    for u in reply.unchecked[:15]
                )
            )
        )
    lines = [mirror_blocks.observation_line(o) for o in rows]
    chunk: list[str] = []
    for line in lines:
        if sum(len(item) + 1 for item in chunk) + len(line) > 2900:
            blocks.append(section("\n".join(chunk)))
            chunk = []
        chunk.append(line)
        if len(blocks) >= MAX_BLOCKS - 2:
            break
    if chunk and len(blocks) < MAX_BLOCKS - 1:
        blocks.append(section("\n".join(chunk)))
    shown = sum(len(b["text"]["text"].splitlines()) for b in blocks[1 + bool(reply.unchecked) :])
    if shown < len(rows):
        blocks.append(context(f"{len(rows) - shown} more mirrors not shown"))
    return SlackMessage(f"{len(failing)} of {len(rows)} mirrors failing", blocks)


def linked_users(reply: LinkedUsers) -> SlackMessage:
    if not reply.links:
        return SlackMessage("no linked users", [section("Nobody has linked a GitLab account.")])
    lines = [
        f"• <@{link.slack_user_id}> → *{escape(link.gitlab_username)}* "
        f"({'OAuth' if link.kind == 'oauth' else 'token'}"
        + (" ended" if link.broken else "")
        + f", {', '.join(link.scopes) or 'scopes unknown'}"
        + (f", expires {link.expires_at}" if link.expires_at else "")
        + ")"
        for link in reply.links[:200]
    ]
    text = "\n".join(lines)
    return SlackMessage(f"{len(reply.links)} linked users", [section(f"*Linked users*\n{text}")])


def mirror_list(reply: MirrorList) -> SlackMessage:
    return mirror_blocks.mirror_list(reply.mirrors, reply.offset)


def mirror_details(reply: MirrorDetails) -> SlackMessage:
    return mirror_blocks.mirror_details(reply.project, reply.mirror)


def public_key(reply: PublicKeyInfo) -> SlackMessage:
    return mirror_blocks.public_key(reply.project, reply.mirror_id, reply.public_key)


def pull_details(reply: PullDetails) -> SlackMessage:
    return mirror_blocks.pull_details(reply.project, reply.pull)


_RENDERERS: dict[type, Callable[[Any], SlackMessage]] = {
    Help: help_message,
    Problem: problem,
    Info: info,
    AccountInfo: account,
    MirrorList: mirror_list,
    MirrorDetails: mirror_details,
    PullDetails: pull_details,
    PublicKeyInfo: public_key,
    ChangeMade: change_made,
    SyncStarted: sync_started,
    ApprovalNeeded: approval_needed,
    Watching: watching,
    StatusReport: status_report,
    InventoryReport: fleet_blocks.inventory_summary,
    PendingApprovals: pending_approvals,
    ApprovalDecided: approval_decided,
    Muted: muted,
    LinkedUsers: linked_users,
    DeviceLoginStarted: login_blocks.login_started,
    DeviceLoginFinished: login_blocks.login_finished,
    RotationProgress: rotation_progress,
}
