"""`/mirror …` text into a typed command, or a `UsageError` with the right usage line.

Shared by Slack and the console: neither knows the grammar, both call `parse_command`.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from bot.domain.channels import ChannelName
from bot.gitlab.refs import (
    GroupRef,
    ProjectRef,
    ProjectRefError,
    parse_group_ref,
    parse_project_ref,
)

MAX_COMMAND_LENGTH = 2000
# `<#C…|name>` (Slack escapes a picked channel so), `#C…` or `C…` by id, `#name` by name
# (Slack's channel names are lower case, so an upper-case word is an id; without the `#`
# only an id of real length, so that a word is not taken for one).
_CHANNEL = re.compile(
    r"^<#(?P<id>[CG][A-Z0-9]+)(?:\|[^>]*)?>$"
    r"|^(?:#(?=[CG][A-Z0-9]+$)|(?=[CG][A-Z0-9]{6,}$))(?P<raw>[CG][A-Z0-9]+)$"
    r"|^#(?P<name>[a-z0-9][a-z0-9._-]{0,79})$"
)

USAGE = {
    "help": "/mirror help",
    "login": "/mirror login",
    "logout": "/mirror logout",
    "whoami": "/mirror whoami",
    "list": "/mirror list PROJECT",
    "show": "/mirror show PROJECT MIRROR_ID",
    "key": "/mirror key PROJECT MIRROR_ID",
    "sync": "/mirror sync PROJECT [MIRROR_ID]",
    "enable": "/mirror enable PROJECT MIRROR_ID",
    "disable": "/mirror disable PROJECT MIRROR_ID",
    "delete": "/mirror delete PROJECT MIRROR_ID",
    "add": "/mirror add PROJECT",
    "edit": "/mirror edit PROJECT MIRROR_ID",
    "pull": "/mirror pull PROJECT | pull sync PROJECT | pull config PROJECT",
    "watch": "/mirror watch PROJECT|GROUP/ [#channel]",
    "unwatch": "/mirror unwatch PROJECT|GROUP/",
    "watching": "/mirror watching",
    "unmute": "/mirror unmute PROJECT MIRROR_ID|pull",
    "status": "/mirror status [--refresh]",
    "inventory": "/mirror inventory GROUP [--csv]",
    "digest": "/mirror digest HH:MM [TIMEZONE] [always] | digest off",
    "approvals": "/mirror approvals",
    "rotate": "/mirror rotate PROJECT MIRROR_ID",
    "users": "/mirror users list | users unlink @user   (admins)",
}


class UsageError(Exception):
    """Bad input: one line saying what is wrong, plus the usage to show."""

    def __init__(self, message: str, usage: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.usage = usage


@dataclass(frozen=True)
class Command:
    """A parsed command. `name` is the subcommand (`pull sync` → `pull-sync`)."""

    name: str
    project: ProjectRef | None = None
    mirror_id: int | None = None
    channel: ChannelName | None = None
    refresh: bool = False
    csv: bool = False  # `inventory --csv`: the file, not the table (console)
    target_user: str | None = None
    group: GroupRef | None = None  # `watch GROUP/`, `unwatch GROUP/`
    digest_at: str | None = None  # `digest HH:MM [TZ] [always]`; "off" ends it
    digest_timezone: str | None = None
    digest_always: bool = False


def parse_command(text: str, gitlab_url: str | None = None) -> Command:
    if len(text) > MAX_COMMAND_LENGTH:
        raise UsageError("that command is too long", USAGE["help"])
    try:
        words = shlex.split(text.strip())
    except ValueError:
        words = text.split()
    if words and words[0] == "/mirror":
        words = words[1:]
    if not words:
        return Command("help")
    name, args = words[0].lower(), words[1:]
    if name == "pull" and args and args[0].lower() in ("sync", "config"):
        name, args = f"pull-{args[0].lower()}", args[1:]
    if name == "users" and args:
        return _users(args)
    grammar = _GRAMMAR.get(name)
    if grammar is None:
        shown = name if len(name) <= 30 else name[:29] + "…"
        raise UsageError(f"unknown command `{shown}` — try `/mirror help`", None)
    return grammar(name, args, gitlab_url)


def usage_of(name: str) -> str:
    return USAGE.get(name.split("-")[0], USAGE["help"])


def _expect(name: str, args: list[str], minimum: int, maximum: int) -> None:
    if len(args) < minimum:
        what = "a project" if not args else "a mirror id"
        raise UsageError(f"`{name.replace('-', ' ')}` needs {what}", usage_of(name))
    if len(args) > maximum:
        raise UsageError(f"`{name.replace('-', ' ')}` takes fewer arguments", usage_of(name))


def _project(name: str, text: str, gitlab_url: str | None) -> ProjectRef:
    try:
        return parse_project_ref(text, gitlab_url)
    except ProjectRefError as exc:
        raise UsageError(str(exc), usage_of(name)) from None


def _mirror_id(name: str, text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 2**63:
        shown = text if len(text) <= 20 else text[:19] + "…"
        raise UsageError(
            f"`{shown}` is not a mirror id — mirror ids are numbers, as "
            "`/mirror list PROJECT` shows them",
            usage_of(name),
        )
    return int(text)


def _no_args(name: str, args: list[str], gitlab_url: str | None) -> Command:
    _expect(name, args, 0, 0)
    return Command(name)


def _project_only(name: str, args: list[str], gitlab_url: str | None) -> Command:
    _expect(name, args, 1, 1)
    return Command(name, _project(name, args[0], gitlab_url))


def _project_and_mirror(name: str, args: list[str], gitlab_url: str | None) -> Command:
    _expect(name, args, 2, 2)
    return Command(name, _project(name, args[0], gitlab_url), _mirror_id(name, args[1]))


def _unmute(name: str, args: list[str], gitlab_url: str | None) -> Command:
    _expect(name, args, 2, 2)
    mirror_id = None if args[1].lower() == "pull" else _mirror_id(name, args[1])
    return Command(name, _project(name, args[0], gitlab_url), mirror_id)


def _sync(name: str, args: list[str], gitlab_url: str | None) -> Command:
    _expect(name, args, 1, 2)
    mirror_id = _mirror_id(name, args[1]) if len(args) == 2 else None
    return Command(name, _project(name, args[0], gitlab_url), mirror_id)


def _group_arg(
    name: str, args: list[str], gitlab_url: str | None
) -> tuple[GroupRef | None, list[str]]:
    """`GROUP/` (a trailing slash) or `--group GROUP` names a group; the rest is returned."""
    if args and args[0] == "--group":
        if len(args) < 2:
            raise UsageError(f"`{name} --group` needs a group", usage_of(name))
        text, rest = args[1], args[2:]
    elif args and args[0].rstrip(">").endswith("/"):
        text, rest = args[0], args[1:]
    else:
        return None, args
    try:
        return parse_group_ref(text, gitlab_url), rest
    except ProjectRefError as exc:
        raise UsageError(
            str(exc).replace("a GitLab project", "a GitLab group"), usage_of(name)
        ) from None


def _unwatch(name: str, args: list[str], gitlab_url: str | None) -> Command:
    group, rest = _group_arg(name, args, gitlab_url)
    if group is not None:
        if rest:
            raise UsageError(f"`{name}` takes fewer arguments", usage_of(name))
        return Command(name, group=group)
    return _project_only(name, args, gitlab_url)


def _watch(name: str, args: list[str], gitlab_url: str | None) -> Command:
    group, rest = _group_arg(name, args, gitlab_url)
    if group is not None:
        args = ["-", *rest]  # the channel check below, on what follows the group
    _expect(name, args, 1, 2)
    channel = None
    if len(args) == 2:
        match = _CHANNEL.match(args[1])
        if not match:
            raise UsageError(f"`{args[1][:40]}` is not a channel — pick one with #", usage_of(name))
        by_id = match.group("id") or match.group("raw")
        channel = ChannelName(id=by_id) if by_id else ChannelName(name=match.group("name"))
    if group is not None:
        return Command(name, channel=channel, group=group)
    return Command(name, _project(name, args[0], gitlab_url), channel=channel)


def _inventory(name: str, args: list[str], gitlab_url: str | None) -> Command:
    as_csv = "--csv" in args
    rest = [a for a in args if a != "--csv"]
    if rest[:1] == ["--group"]:
        rest = rest[1:]
    if len(rest) != 1:
        raise UsageError("`inventory` needs one group", usage_of(name))
    try:
        group = parse_group_ref(rest[0], gitlab_url)
    except ProjectRefError as exc:
        message = str(exc).replace("a GitLab project", "a GitLab group")
        raise UsageError(message, usage_of(name)) from None
    return Command(name, group=group, csv=as_csv)


def _digest(name: str, args: list[str], gitlab_url: str | None) -> Command:
    if not args:
        return Command(name)
    if args[0].lower() == "off":
        if len(args) > 1:
            raise UsageError("`digest off` takes nothing more", usage_of(name))
        return Command(name, digest_at="off")
    always = bool(args) and args[-1].lower() == "always"
    rest = args[1:-1] if always else args[1:]
    if len(rest) > 1:
        raise UsageError("`digest` takes a time, a time zone and `always`", usage_of(name))
    return Command(
        name, digest_at=args[0], digest_timezone=rest[0] if rest else None, digest_always=always
    )


def _status(name: str, args: list[str], gitlab_url: str | None) -> Command:
    if args not in ([], ["--refresh"]):
        raise UsageError("`status` takes only `--refresh`", usage_of(name))
    return Command(name, refresh=bool(args))


def _users(args: list[str]) -> Command:
    sub = args[0].lower()
    if sub == "list" and len(args) == 1:
        return Command("users-list")
    if sub == "unlink" and len(args) == 2:
        match = re.match(
            r"^<@(?P<id>[UW][A-Z0-9]+)(?:\|[^>]*)?>$|^(?P<raw>[UW][A-Z0-9]{6,})$", args[1]
        )
        if match:
            return Command("users-unlink", target_user=match.group("id") or match.group("raw"))
        raise UsageError(
            f"`{args[1][:40]}` is not a Slack user — mention them with @", USAGE["users"]
        )
    raise UsageError("unknown `users` command", USAGE["users"])


_GRAMMAR = {
    "help": _no_args,
    "login": _no_args,
    "logout": _no_args,
    "whoami": _no_args,
    "list": _project_only,
    "show": _project_and_mirror,
    "key": _project_and_mirror,
    "sync": _sync,
    "enable": _project_and_mirror,
    "disable": _project_and_mirror,
    "delete": _project_and_mirror,
    "add": _project_only,
    "edit": _project_and_mirror,
    "pull": _project_only,
    "pull-sync": _project_only,
    "pull-config": _project_only,
    "watch": _watch,
    "unwatch": _unwatch,
    "watching": _no_args,
    "unmute": _unmute,
    "status": _status,
    "inventory": _inventory,
    "digest": _digest,
    "approvals": _no_args,
    "rotate": _project_and_mirror,
    "users": _no_args,
}
