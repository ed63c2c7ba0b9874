"""Running the console: against the configured GitLab, or the `--demo` sandbox."""

from __future__ import annotations

import asyncio
import contextlib
import sys

from rich.console import Console

from bot.commands.run import Actor
from bot.config import Settings
from bot.console.channels import ConsoleChannelDirectory
from bot.console.demo import ADA, DEMO_CHANNEL, DEMO_TEAM, Demo
from bot.console.session import QUIT, ConsoleSession, print_alerts_forever
from bot.console.terminal import TerminalReader, run_interactive
from bot.domain import audit
from bot.domain.accounts import SlackUser
from bot.domain.channels import ChannelDirectory
from bot.domain.errors import DomainError
from bot.gitlab.refs import ProjectRef
from bot.services import Services, build_services
from bot.slack.app import build_slack_client
from bot.slack.channel_directory import SlackChannelDirectory
from bot.slack_workspace import resolve_team_id
from bot.store.migrate import upgrade_database

CONSOLE_CHANNEL = "CCONSOLE"
INTRO = (
    "Mirrorbot console — type /mirror commands with or without `/mirror` (try `help`; Tab "
    "completes). Letters pick a button; `alerts` shows recent alerts; `as USER` switches "
    "user; `quit` or Ctrl-D leaves."
)
DEMO_INTRO = (
    "Demo: GitLab simulator with demo/website and demo/api; you are ada (UADA); grace "
    "(UGRACE) can approve your requests (`as UGRACE`). demo/api has a failing mirror: its "
    "alert appears shortly."
)


async def run_console(
    settings: Settings,
    *,
    as_user: str | None,
    command: str | None,
    demo: Demo | None,
    out: Console,
    err: Console | None = None,
    buttons: bool = False,
    interactive: bool | None = None,
) -> int:
    """`command`: run it and return the exit status (problems on `err`, buttons only with
    `buttons`). Otherwise a session: at a terminal (`interactive`, by default when stdin is
    one) with line editing and syncs in the background; else line by line from stdin."""
    await asyncio.to_thread(upgrade_database, settings.database_url)
    services = build_services(settings)
    services.channels = _channel_directory(services, demo)
    alerts: asyncio.Task[None] | None = None
    if interactive is None:
        interactive = command is None and sys.stdin.isatty()
    try:
        actor = await (
            _demo_actor(services, demo, as_user) if demo else _actor(services, settings, as_user)
        )
        session = ConsoleSession(
            services,
            actor,
            out,
            operator=audit.local_operator("console"),
            on_device_login=demo.approve_soon if demo else None,
            err=err if command is not None else None,
            buttons=buttons or command is None,
            background=interactive,
        )
        if demo is not None:
            for project in demo.world.projects.values():
                session.known_mirrors[project.path] = set(project.push_mirrors)
        await session.act_as(actor.user_id)
        if command is not None:
            return 0 if await session.handle(command) else 1

        async def introduce() -> None:
            nonlocal alerts
            out.print(INTRO, style="dim")
            if demo is not None:
                out.print(DEMO_INTRO, style="dim")
                alerts = asyncio.create_task(print_alerts_forever(session, first_after=2.0))

        if interactive:
            users = [link.slack_user_id for link in await services.accounts.list_links()]
            reader = TerminalReader(session, lambda: users)
            session.prompter = reader.prompter()
            await run_interactive(session, reader, introduce)
            return 0
        await introduce()
        while True:
            try:
                line = await asyncio.to_thread(input, "mirror> ")
            except EOFError:
                break
            if line.strip().lower() in QUIT:
                break
            await session.handle(line)
        return 0
    finally:
        if alerts is not None:
            alerts.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await alerts
        await services.close()


def _channel_directory(services: Services, demo: Demo | None) -> ChannelDirectory:
    """Slack's channels when the console runs beside a real workspace (its alerts go
    there), the console's own otherwise."""
    if demo is None and services.settings.slack_bot_token is not None:
        return SlackChannelDirectory(build_slack_client(services))
    return ConsoleChannelDirectory()


async def _demo_actor(services: Services, demo: Demo, as_user: str | None) -> Actor:
    for user_id, token in demo.users.items():
        await services.accounts.link(SlackUser(DEMO_TEAM, user_id), token, linked_by="demo")
    ada = await services.accounts.gitlab_for(SlackUser(DEMO_TEAM, ADA))
    for path in ("demo/website", "demo/api"):
        await services.subscriptions.watch(
            ada, ProjectRef(path), team_id=DEMO_TEAM, channel_id=DEMO_CHANNEL, user_id=ADA
        )
    return Actor(DEMO_TEAM, as_user or ADA, DEMO_CHANNEL)


async def _actor(services: Services, settings: Settings, as_user: str | None) -> Actor:
    user_id = as_user or next(iter(settings.mirrorbot_admins), None)
    if user_id is None:
        raise DomainError("pass --as SLACK_USER_ID (or set MIRRORBOT_ADMINS)")
    teams = {
        link.slack_team_id
        for link in await services.accounts.list_links()
        if link.slack_user_id == user_id
    }
    team = teams.pop() if len(teams) == 1 else await resolve_team_id(settings)
    return Actor(team, user_id, CONSOLE_CHANNEL)
