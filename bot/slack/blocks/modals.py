"""Modals: login, add/edit push mirror, pull-mirror configuration, and their states."""

from __future__ import annotations

from typing import Any

from bot.gitlab.models import PullMirror, PushMirror
from bot.slack.blocks.text import code, context, section
from bot.slack.ids import Fields, FormContext, Views

OPTION_ENABLED = "enabled"
OPTION_KEEP_DIVERGENT = "keep_divergent_refs"
OPTION_PROTECTED = "only_protected_branches"
OPTION_TRIGGER_BUILDS = "mirror_trigger_builds"
OPTION_PULL_PROTECTED = "only_mirror_protected_branches"
OPTION_OVERWRITE = "mirror_overwrites_diverged_branches"


def _plain(text: str) -> dict[str, str]:
    return {"type": "plain_text", "text": text}


def _modal(
    callback_id: str,
    title: str,
    blocks: list[dict[str, Any]],
    meta: FormContext,
    submit: str | None = "Save",
) -> dict[str, Any]:
    view: dict[str, Any] = {
        "type": "modal",
        "callback_id": callback_id,
        "title": _plain(title[:24]),
        "close": _plain("Cancel"),
        "private_metadata": meta.dump(),
        "blocks": blocks,
    }
    if submit:
        view["submit"] = _plain(submit[:24])
    return view


def _text_input(
    field: Fields,
    label: str,
    *,
    initial: str | None = None,
    placeholder: str | None = None,
    optional: bool = False,
    hint: str | None = None,
) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": field.value}
    if initial:
        element["initial_value"] = initial
    if placeholder:
        element["placeholder"] = _plain(placeholder[:150])
    block: dict[str, Any] = {
        "type": "input",
        "block_id": field.value,
        "label": _plain(label),
        "element": element,
        "optional": optional,
    }
    if hint:
        block["hint"] = _plain(hint)
    return block


def _checkboxes(options: list[tuple[str, str]], selected: set[str]) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "checkboxes",
        "action_id": Fields.OPTIONS.value,
        "options": [{"text": _plain(label), "value": value} for value, label in options],
    }
    initial = [o for o in element["options"] if o["value"] in selected]
    if initial:
        element["initial_options"] = initial
    return {
        "type": "input",
        "block_id": Fields.OPTIONS.value,
        "label": _plain("Options"),
        "element": element,
        "optional": True,
    }


def login(meta: FormContext, gitlab_url: str) -> dict[str, Any]:
    token_page = f"{gitlab_url}/-/user_settings/personal_access_tokens?name=Mirrorbot&scopes=api"
    return _modal(
        Views.LOGIN,
        "Link GitLab",
        [
            section(
                f"Create a personal access token with the `api` scope on <{token_page}|your "
                "GitLab token page> and paste it here. Mirrorbot acts with it on your behalf "
                "and stores it encrypted."
            ),
            _text_input(Fields.TOKEN, "Personal access token", placeholder="glpat-…"),
        ],
        meta,
        submit="Link",
    )


def loading(title: str, meta: FormContext, text: str = "Loading from GitLab…") -> dict[str, Any]:
    return _modal(
        "view-loading", title, [section(f":hourglass_flowing_sand: {text}")], meta, submit=None
    )


def notice(title: str, text: str) -> dict[str, Any]:
    """A closing view after submission: the result or the error, in one line."""
    return {
        "type": "modal",
        "title": _plain(title[:24]),
        "close": _plain("Close"),
        "blocks": [section(text)],
    }


def rotate_form(meta: FormContext, mirror: PushMirror) -> dict[str, Any]:
    """Rotate: a password mirror asks for the new username and password or token; an SSH
    mirror asks nothing (it gets a new key pair), only to confirm."""
    kept = (
        f"{'enabled' if mirror.enabled else 'disabled'}, {mirror.auth_method}, "
        f"{'protected branches only' if mirror.only_protected_branches else 'all branches'}"
        f"{', filter ' + code(mirror.mirror_branch_regex) if mirror.mirror_branch_regex else ''}"
        f"{', keeps divergent refs' if mirror.keep_divergent_refs else ''}"
    )
    blocks: list[dict[str, Any]] = [
        section(
            f"A new push mirror to {code(mirror.url or '?')} is created beside mirror "
            f"{mirror.id}, with every setting of it ({kept}), and synced. Mirror {mirror.id} "
            "is deleted only once the new one has synced; if the new one fails, it is "
            "deleted and the old one kept."
        )
    ]
    if mirror.auth_method == "ssh_public_key":
        blocks.append(
            context("Nothing to type: the new mirror gets a new key pair and fresh host keys.")
        )
        return _modal(Views.ROTATE, "Re-create mirror", blocks, meta, submit="Re-create")
    blocks += [
        _text_input(Fields.NEW_USERNAME, "Username", placeholder="the user the token belongs to"),
        _text_input(
            Fields.NEW_PASSWORD,
            "New password or token",
            hint="Stored encrypted only until the new mirror exists; never shown or logged.",
        ),
    ]
    return _modal(Views.ROTATE, "Rotate credentials", blocks, meta, submit="Rotate")


def push_mirror_form(meta: FormContext, mirror: PushMirror | None) -> dict[str, Any]:
    """Add (no mirror) or edit (a mirror: its URL cannot be changed through the API)."""
    blocks: list[dict[str, Any]] = []
    if mirror is None:
        blocks.append(
            _text_input(
                Fields.URL,
                "Target repository URL",
                placeholder="https://user:token@example.com/group/repo.git",
                hint="http, https, ssh or git. Credentials in the URL are stored by GitLab and "
                "shown masked.",
            )
        )
    else:
        blocks.append(section(f"Push mirror *{mirror.id}* → {code(mirror.url or '?')}"))
        blocks.append(
            context(
                "GitLab cannot change a mirror's URL: to change it, delete the "
                "mirror and add a new one."
            )
        )
    current_auth = mirror.auth_method if mirror else "password"
    auth_options = [
        {"text": _plain("Password or token in the URL"), "value": "password"},
        {"text": _plain("SSH public key (ssh:// URLs)"), "value": "ssh_public_key"},
    ]
    blocks.append(
        {
            "type": "input",
            "block_id": Fields.AUTH_METHOD.value,
            "label": _plain("Authentication"),
            "element": {
                "type": "static_select",
                "action_id": Fields.AUTH_METHOD.value,
                "options": auth_options,
                "initial_option": next(o for o in auth_options if o["value"] == current_auth),
            },
        }
    )
    selected = {OPTION_ENABLED} if mirror is None else set()
    if mirror is not None:
        selected = {
            name
            for name, on in (
                (OPTION_ENABLED, mirror.enabled),
                (OPTION_KEEP_DIVERGENT, mirror.keep_divergent_refs),
                (OPTION_PROTECTED, mirror.only_protected_branches),
            )
            if on
        }
    blocks.append(
        _checkboxes(
            [
                (OPTION_ENABLED, "Enabled"),
                (OPTION_KEEP_DIVERGENT, "Keep divergent refs"),
                (OPTION_PROTECTED, "Mirror only protected branches"),
            ],
            selected,
        )
    )
    blocks.append(
        _text_input(
            Fields.BRANCH_REGEX,
            "Branch filter (regular expression)",
            optional=True,
            initial=mirror.mirror_branch_regex if mirror else None,
            placeholder="^release/.*$",
            hint="GitLab Premium. Cannot be combined with 'only protected branches'.",
        )
    )
    if mirror is None:
        return _modal(Views.ADD_PUSH_MIRROR, "Add push mirror", blocks, meta, submit="Add")
    return _modal(Views.EDIT_PUSH_MIRROR, f"Edit mirror {mirror.id}", blocks, meta)


def pull_config_form(meta: FormContext, pull: PullMirror | None) -> dict[str, Any]:
    selected = {OPTION_ENABLED}
    if pull is not None:
        selected = {
            name
            for name, on in (
                (OPTION_ENABLED, pull.enabled),
                (OPTION_TRIGGER_BUILDS, pull.mirror_trigger_builds),
                (OPTION_PULL_PROTECTED, pull.only_mirror_protected_branches),
                (OPTION_OVERWRITE, pull.mirror_overwrites_diverged_branches),
            )
            if on
        }
    blocks = [
        _text_input(
            Fields.URL,
            "Source repository URL",
            optional=pull is not None,
            placeholder="https://example.com/group/upstream.git",
            hint=(
                f"Now: {pull.url}. Leave empty to keep it."
                if pull and pull.url
                else "http, https, ssh or git."
            ),
        ),
        _text_input(Fields.AUTH_USER, "Username", optional=True),
        _text_input(
            Fields.AUTH_PASSWORD,
            "Password or token",
            optional=True,
            hint="Sent to GitLab only; Mirrorbot keeps it encrypted while an approval "
            "is pending and never shows it.",
        ),
        _checkboxes(
            [
                (OPTION_ENABLED, "Enabled"),
                (OPTION_TRIGGER_BUILDS, "Trigger pipelines for mirror updates"),
                (OPTION_PULL_PROTECTED, "Mirror only protected branches"),
                (OPTION_OVERWRITE, "Overwrite diverged branches"),
            ],
            selected,
        ),
        _text_input(
            Fields.BRANCH_REGEX,
            "Branch filter (regular expression)",
            optional=True,
            initial=pull.mirror_branch_regex if pull else None,
        ),
    ]
    return _modal(Views.PULL_CONFIG, "Pull mirror", blocks, meta)
