"""Approve / Reject / Cancel on an approval card. The domain makes each transition once;
this runs the approved operation with the requester's token and updates the card."""

from __future__ import annotations

from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.accounts import SlackUser
from bot.domain.approvals import Approval, ApprovalRefused
from bot.domain.errors import DomainError
from bot.domain.mirrors import execute_operation, require_maintainer
from bot.gitlab.errors import GitLabError
from bot.gitlab.refs import ProjectRef
from bot.services import Services
from bot.slack.blocks.replies import approval_card
from bot.slack.delivery import Respond
from bot.slack.ids import ApprovalActions, ApprovalRef
from bot.slack.listeners.actions.mirror_buttons import actor_of
from bot.slack.listeners.guard import report_failure


async def handle_approval_button(
    ack: Any,
    body: dict[str, Any],
    action: dict[str, Any],
    client: AsyncWebClient,
    respond: Respond,
    context: dict[str, Any],
) -> None:
    await ack()
    services: Services = context["services"]
    clicker = actor_of(body)
    request_id = ApprovalRef.model_validate_json(action["value"]).request_id
    action_id = ApprovalActions(action["action_id"])
    try:
        approval = await services.approvals.get(request_id)
        if approval is None:
            raise ApprovalRefused("that approval request no longer exists")
        if action_id is ApprovalActions.CANCEL:
            await services.approvals.cancel(request_id, clicker.user_id)
        else:
            await decide(approval, clicker.slack_user, action_id, services)
    except Exception as exc:
        await report_failure(
            exc,
            lambda **message: respond(**message, replace_original=False, response_type="ephemeral"),
        )
    updated = await services.approvals.get(request_id)
    if updated is not None:
        await update_card(updated, client, respond)


async def decide(
    approval: Approval, clicker: SlackUser, action_id: ApprovalActions, services: Services
) -> None:
    if clicker.user_id == approval.requester_id and action_id is ApprovalActions.APPROVE:
        raise ApprovalRefused(
            "you cannot approve your own request — ask a colleague with the Maintainer role"
        )
    # The approver's own token must show at least Maintainer on the project.
    approver_gitlab = await services.accounts.gitlab_for(clicker)
    await require_maintainer(
        approver_gitlab, ProjectRef.of(approval.project_id, approval.project_path)
    )
    if action_id is ApprovalActions.REJECT:
        await services.approvals.reject(approval.id, clicker.user_id)
        return
    operation = await services.approvals.approve(approval.id, clicker.user_id)
    try:
        requester = SlackUser(approval.team_id, approval.requester_id)
        gitlab = await services.accounts.gitlab_for(requester)
        outcome = await execute_operation(gitlab, operation)
    except (GitLabError, DomainError) as exc:
        await services.approvals.finish(
            approval.id,
            succeeded=False,
            result=f"<@{approval.requester_id}>'s request failed: {exc.user_message}",
        )
        return
    await services.approvals.finish(approval.id, succeeded=True, result=outcome.summary)


async def update_card(approval: Approval, client: AsyncWebClient, respond: Respond) -> None:
    message = approval_card(approval)
    if approval.message_ts:
        try:
            await client.chat_update(
                channel=approval.channel_id, ts=approval.message_ts, **message.as_kwargs()
            )
            return
        except SlackApiError:
            pass
    await respond(**message.as_kwargs(), replace_original=True)
