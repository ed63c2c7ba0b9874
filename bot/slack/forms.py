"""Opening the modals (within 3 s of the trigger) and reading what was submitted.

A modal opens at once, before any GitLab or database work: trigger ids expire after 3 s.
Forms that need GitLab's current values open as "Loading…" and are filled in afterwards.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.commands.parse import Command
from bot.commands.results import Reply
from bot.commands.rotation import mirror_to_rotate
from bot.commands.run import Actor, request_change, run_guarded
from bot.domain.errors import DomainError
from bot.domain.mirrors import Operation, pull_mirror_or_none
from bot.domain.rotations import NewCredentials
from bot.domain.validation import branch_regex_problem, mirror_url_problem
from bot.gitlab.client import GitLabClient
from bot.gitlab.errors import GitLabError
from bot.gitlab.refs import ProjectRef
from bot.services import Services
from bot.slack.after_ack import later
from bot.slack.blocks import modals
from bot.slack.delivery import deliver
from bot.slack.ids import Fields, FormContext


async def open_login(
    trigger_id: str, actor: Actor, client: AsyncWebClient, services: Services
) -> None:
    meta = FormContext(channel_id=actor.channel_id)
    await client.views_open(
        trigger_id=trigger_id, view=modals.login(meta, services.settings.gitlab_url)
    )


async def open_push_mirror_form(
    trigger_id: str, actor: Actor, command: Command, client: AsyncWebClient, services: Services
) -> None:
    assert command.project is not None
    meta = FormContext(
        channel_id=actor.channel_id, project=command.project.value, mirror_id=command.mirror_id
    )
    if command.mirror_id is None:
        await client.views_open(trigger_id=trigger_id, view=modals.push_mirror_form(meta, None))
        return
    opened = await client.views_open(
        trigger_id=trigger_id, view=modals.loading("Edit push mirror", meta)
    )
    view_id = opened["view"]["id"]
    try:
        gitlab = await services.accounts.gitlab_for(actor.slack_user)
        mirror = await gitlab.get_push_mirror(command.project, command.mirror_id)
    except (GitLabError, DomainError) as exc:
        await client.views_update(
            view_id=view_id, view=modals.notice("Edit push mirror", exc.user_message)
        )
        return
    await client.views_update(view_id=view_id, view=modals.push_mirror_form(meta, mirror))


async def open_pull_config_form(
    trigger_id: str, actor: Actor, command: Command, client: AsyncWebClient, services: Services
) -> None:
    assert command.project is not None
    meta = FormContext(channel_id=actor.channel_id, project=command.project.value)
    opened = await client.views_open(
        trigger_id=trigger_id, view=modals.loading("Pull mirror", meta)
    )
    view_id = opened["view"]["id"]
    try:
        gitlab = await services.accounts.gitlab_for(actor.slack_user)
        pull = await pull_mirror_or_none(gitlab, command.project)
    except (GitLabError, DomainError) as exc:
        await client.views_update(
            view_id=view_id, view=modals.notice("Pull mirror", exc.user_message)
        )
        return
    await client.views_update(view_id=view_id, view=modals.pull_config_form(meta, pull))


async def open_rotate_form(
    trigger_id: str,
    actor: Actor,
    project: ProjectRef,
    mirror_id: int,
    client: AsyncWebClient,
    services: Services,
) -> None:
    meta = FormContext(channel_id=actor.channel_id, project=project.value, mirror_id=mirror_id)
    opened = await client.views_open(trigger_id=trigger_id, view=modals.loading("Rotate", meta))
    view_id = opened["view"]["id"]
    try:
        gitlab = await services.accounts.gitlab_for(actor.slack_user)
        project_found, mirror = await mirror_to_rotate(gitlab, project, mirror_id)
    except (GitLabError, DomainError) as exc:
        await client.views_update(view_id=view_id, view=modals.notice("Rotate", exc.user_message))
        return
    meta = FormContext(
        channel_id=actor.channel_id, project=str(project_found.id), mirror_id=mirror_id
    )
    await client.views_update(view_id=view_id, view=modals.rotate_form(meta, mirror))


# --- reading submissions ---------------------------------------------------------------------


def form_context(view: dict[str, Any]) -> FormContext:
    return FormContext.model_validate_json(view.get("private_metadata") or "{}")


def project_of(meta: FormContext) -> ProjectRef:
    assert meta.project is not None
    return ProjectRef(meta.project)


def _value(view: dict[str, Any], field: Fields) -> Any:
    return view["state"]["values"].get(field.value, {}).get(field.value, {})


def text_value(view: dict[str, Any], field: Fields) -> str:
    return str(_value(view, field).get("value") or "").strip()


def selected_options(view: dict[str, Any]) -> set[str]:
    return {o["value"] for o in _value(view, Fields.OPTIONS).get("selected_options") or []}


def read_push_mirror_form(
    view: dict[str, Any],
    *,
    adding: bool,
) -> tuple[dict[str, Any], dict[str, str]]:
    """The create/update attributes, and errors per block for the modal to show."""
    options = selected_options(view)
    auth = (_value(view, Fields.AUTH_METHOD).get("selected_option") or {}).get("value")
    regex = text_value(view, Fields.BRANCH_REGEX)
    protected = modals.OPTION_PROTECTED in options
    # The branch choice as the form shows it (an emptied filter means none); the domain
    # turns it into what GitLab takes (`branch_options`).
    attributes: dict[str, Any] = {
        "enabled": modals.OPTION_ENABLED in options,
        "keep_divergent_refs": modals.OPTION_KEEP_DIVERGENT in options,
        "auth_method": auth or "password",
        "only_protected_branches": protected,
        "mirror_branch_regex": regex,
    }
    errors: dict[str, str] = {}
    if adding:
        url = text_value(view, Fields.URL)
        attributes["url"] = url
        if problem := mirror_url_problem(url):
            errors[Fields.URL.value] = problem
    if problem := branch_regex_problem(regex, protected):
        errors[Fields.BRANCH_REGEX.value] = problem
    return attributes, errors


def read_rotate_form(view: dict[str, Any]) -> tuple[NewCredentials | None, dict[str, str]]:
    """The new credentials (None for an SSH mirror's form, which has no fields)."""
    blocks = {block.get("block_id") for block in view.get("blocks", [])}
    if Fields.NEW_PASSWORD.value not in blocks:
        return None, {}
    credentials = NewCredentials(
        text_value(view, Fields.NEW_USERNAME),
        str(_value(view, Fields.NEW_PASSWORD).get("value") or ""),  # spaces are the secret's
    )
    fields = {"username": Fields.NEW_USERNAME.value, "password": Fields.NEW_PASSWORD.value}
    return credentials, {fields[k]: v for k, v in credentials.problems().items()}


def read_pull_config_form(view: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    options = selected_options(view)
    attributes: dict[str, Any] = {
        "enabled": modals.OPTION_ENABLED in options,
        "mirror_trigger_builds": modals.OPTION_TRIGGER_BUILDS in options,
        "only_mirror_protected_branches": modals.OPTION_PULL_PROTECTED in options,
        "mirror_overwrites_diverged_branches": modals.OPTION_OVERWRITE in options,
    }
    errors: dict[str, str] = {}
    url = text_value(view, Fields.URL)
    if url:
        attributes["url"] = url
        if problem := mirror_url_problem(url):
            errors[Fields.URL.value] = problem
    for field in (Fields.AUTH_USER, Fields.AUTH_PASSWORD):
        if value := text_value(view, field):
            attributes[field.value] = value
    # Always sent: the form shows the current filter, so an emptied one means none (GitLab
    # takes "" as no filter; on pull mirrors it may be sent beside the other options).
    regex = text_value(view, Fields.BRANCH_REGEX)
    attributes["mirror_branch_regex"] = regex
    if regex:
        attributes["only_mirror_protected_branches"] = False
        if problem := branch_regex_problem(regex, False):
            errors[Fields.BRANCH_REGEX.value] = problem
    return attributes, errors


# What a submitted form asks for, with the submitter's GitLab client, who they are and the
# form's context: a change, an approval request, a rotation.
FormWork = Callable[[GitLabClient, Actor, FormContext, Services], Awaitable[Reply]]


async def submit_form(
    ack: Any,
    body: dict[str, Any],
    view: dict[str, Any],
    client: AsyncWebClient,
    context: dict[str, Any],
    errors: dict[str, str],
    work: FormWork,
) -> None:
    """A form was submitted: show its errors in the modal, or close it and run `work` after
    the ack, its reply in the channel the command came from."""
    if errors:
        await ack(response_action="errors", errors=errors)
        return
    await ack()
    meta = form_context(view)
    actor = Actor(body["user"]["team_id"], body["user"]["id"], meta.channel_id)
    services: Services = context["services"]

    async def run() -> Reply:
        gitlab = await services.accounts.gitlab_for(actor.slack_user)
        return await work(gitlab, actor, meta, services)

    async def run_and_tell() -> None:
        await deliver(
            await run_guarded(run),
            client=client,
            respond=None,
            channel_id=actor.channel_id,
            user_id=actor.user_id,
            services=services,
        )

    later(context, run_and_tell())


async def submit_change(
    ack: Any,
    body: dict[str, Any],
    view: dict[str, Any],
    client: AsyncWebClient,
    context: dict[str, Any],
    operation: Operation,
    attributes: dict[str, Any],
    errors: dict[str, str],
) -> None:
    """A change form was submitted: the change is made (or approval asked for)."""

    async def change(
        gitlab: GitLabClient, actor: Actor, meta: FormContext, services: Services
    ) -> Reply:
        return await request_change(
            gitlab, operation, project_of(meta), meta.mirror_id, attributes, actor, services
        )

    await submit_form(ack, body, view, client, context, errors, change)
