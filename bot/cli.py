"""The `mirrorbot` command line: thin wrappers that load settings and call the domain."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import click
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.config import ConfigError, Settings, load_settings
from bot.domain import audit
from bot.domain.accounts import Accounts, SlackUser
from bot.domain.errors import DomainError
from bot.gitlab.client import GitLabClient, create_http_client
from bot.gitlab.errors import GitLabError
from bot.gitlab.http import GitLabHTTP
from bot.logs import configure_logging
from bot.slack_workspace import SlackCheckError, resolve_team_id
from bot.store.clock import SKEW_WARNING_SECONDS, clock_skew
from bot.store.crypto import SecretKeyError, TokenCipher
from bot.store.db import create_engine, session_factory
from bot.store.migrate import upgrade_database
from bot.store.rotation import rotate_secrets

T = TypeVar("T")


def fail(message: str) -> None:
    """Print one line on stderr and exit non-zero: never a traceback."""
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def settings_or_exit(*required: str) -> Settings:
    try:
        settings = load_settings()
        settings.require(*required)
    except ConfigError as exc:
        fail(str(exc))
    return settings


def run(coroutine: Callable[[], Awaitable[T]]) -> T:
    """Run one async command, turning every expected failure into one line."""
    try:
        return asyncio.run(coroutine())  # type: ignore[arg-type]
    except (GitLabError, DomainError) as exc:
        fail(exc.user_message)
    except (ConfigError, SecretKeyError, SlackCheckError) as exc:
        fail(str(exc))
    raise AssertionError("unreachable")


@dataclass
class Runtime:
    """What a CLI command needs, built from settings and closed when it is done."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    gitlab_http: GitLabHTTP
    accounts: Accounts


@asynccontextmanager
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    gitlab_http = create_http_client(settings.gitlab_url)
    try:
        accounts = Accounts(sessions, TokenCipher(settings.secret_keys), gitlab_http)
        yield Runtime(settings, engine, sessions, gitlab_http, accounts)
    finally:
        await gitlab_http.aclose()
        await engine.dispose()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gitlab-mirrorbot")
def main() -> None:
    """Mirrorbot: run GitLab repository mirrors from Slack."""


# --- db ------------------------------------------------------------------------------------


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations (serve does this on start too)."""
    settings = settings_or_exit()
    upgrade_database(settings.database_url)
    click.echo("database is up to date")


@main.group()
def keys() -> None:
    """MIRRORBOT_SECRET_KEY maintenance."""


@keys.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt stored tokens with the first key, so the old keys can be removed."""
    settings = settings_or_exit("MIRRORBOT_SECRET_KEY")

    async def rotate() -> None:
        upgrade_database(settings.database_url)
        engine = create_engine(settings.database_url)
        try:
            count = await rotate_secrets(session_factory(engine), TokenCipher(settings.secret_keys))
        finally:
            await engine.dispose()
        click.echo(f"re-encrypted {count} stored secrets with the first key")

    run(rotate)


# --- users ---------------------------------------------------------------------------------


@main.group()
def users() -> None:
    """The permission table: Slack users linked to GitLab accounts."""


@users.command("link")
@click.argument("slack_user_id")
@click.option("--team", "team_id", help="Slack team id (default: the bot token's workspace)")
def users_link(slack_user_id: str, team_id: str | None) -> None:
    """Link SLACK_USER_ID to the GitLab account whose token is read from standard input."""
    settings = settings_or_exit("MIRRORBOT_SECRET_KEY")
    token = sys.stdin.readline().strip()
    if not token:
        fail("no token on standard input: pipe the user's GitLab personal access token in")

    async def link() -> None:
        team = team_id or await resolve_team_id(settings)
        upgrade_database(settings.database_url)
        async with runtime(settings) as rt:
            link = await rt.accounts.link(
                SlackUser(team, slack_user_id), token, linked_by=audit.local_operator("cli")
            )
        scopes = ", ".join(link.scopes) or "unknown scopes"
        expiry = f", expires {link.expires_at}" if link.expires_at else ""
        click.echo(
            f"linked {team}/{slack_user_id} to GitLab user {link.gitlab_username} "
            f"({scopes}{expiry})"
        )

    run(link)


@users.command("list")
def users_list() -> None:
    """List linked users (never their tokens)."""
    settings = settings_or_exit("MIRRORBOT_SECRET_KEY")

    async def list_users() -> None:
        upgrade_database(settings.database_url)
        async with runtime(settings) as rt:
            links = await rt.accounts.list_links()
        if not links:
            click.echo("no linked users")
        for link in links:
            expiry = str(link.expires_at) if link.expires_at else "no expiry"
            click.echo(
                f"{link.slack_team_id}\t{link.slack_user_id}\t{link.gitlab_username}\t"
                f"{','.join(link.scopes) or '-'}\t{expiry}"
            )

    run(list_users)


@users.command("unlink")
@click.argument("slack_user_id")
@click.option("--team", "team_id", help="Slack team id (default: the bot token's workspace)")
def users_unlink(slack_user_id: str, team_id: str | None) -> None:
    """Remove SLACK_USER_ID's link and stored token."""
    settings = settings_or_exit("MIRRORBOT_SECRET_KEY")

    async def unlink() -> None:
        team = team_id or await resolve_team_id(settings)
        upgrade_database(settings.database_url)
        async with runtime(settings) as rt:
            removed = await rt.accounts.unlink(
                SlackUser(team, slack_user_id), by=audit.local_operator("cli")
            )
        if not removed:
            fail(f"{slack_user_id} is not linked in team {team}")
        click.echo(f"unlinked {team}/{slack_user_id}")

    run(unlink)


# --- check ---------------------------------------------------------------------------------


# What `check` adds to a missing setting that `serve` does not stop for.
_CONSEQUENCES = {
    "GITLAB_WEBHOOK_SECRET": " (until it is set, /gitlab/webhook answers 401 to every request)",
    "GITLAB_SERVICE_TOKEN": " (until it is set, the monitor does not poll and no alert is posted)",
}


def _missing_sqlite_file(database_url: str) -> Path | None:
    """The file of a SQLite URL that does not exist yet (None for any other database)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    path = Path(url.database).resolve()
    return None if path.exists() else path


@main.command("check")
def check() -> None:
    """Validate the configuration and reach GitLab and Slack; say exactly what is wrong."""
    settings = settings_or_exit()
    problems: list[str] = []
    for name in (
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "GITLAB_SERVICE_TOKEN",
        "GITLAB_WEBHOOK_SECRET",
        "MIRRORBOT_SECRET_KEY",
    ):
        try:
            settings.require(name)
        except ConfigError as exc:
            problems.append(str(exc) + _CONSEQUENCES.get(name, ""))

    async def reach() -> None:
        if settings.gitlab_service_token:
            http = create_http_client(settings.gitlab_url)
            try:
                client = GitLabClient(http, settings.gitlab_service_token.get_secret_value())
                user = await client.get_current_user()
                click.echo(
                    f"ok: GitLab at {settings.gitlab_url} answers; the service token "
                    f"belongs to {user.username}"
                )
            except GitLabError as exc:
                problems.append(f"GITLAB_SERVICE_TOKEN / GITLAB_URL: {exc.user_message}")
            finally:
                await http.aclose()
        if settings.slack_bot_token:
            try:
                team = await resolve_team_id(settings)
                click.echo(
                    f"ok: Slack at {settings.slack_api_url} accepts the bot token (team {team})"
                )
            except SlackCheckError as exc:
                problems.append(str(exc))

    asyncio.run(reach())
    missing = _missing_sqlite_file(settings.database_url)
    if missing is not None:
        # A check leaves nothing behind: no stray database file in the current folder.
        if missing.parent.is_dir():
            click.echo(f"ok: the SQLite database {missing} does not exist yet; serve creates it")
        else:
            problems.append(f"DATABASE_URL: the folder {missing.parent} does not exist")
    else:
        try:
            upgrade_database(settings.database_url)
            click.echo("ok: database reachable and migrated")
            skew = asyncio.run(_clock_skew(settings.database_url))
            if abs(skew) > SKEW_WARNING_SECONDS:
                problems.append(
                    f"this host's clock is {abs(skew):.0f} s away from the database's: "
                    "synchronise it (NTP), or replicas may take over each other's messages"
                )
        except Exception as exc:
            problems.append(f"DATABASE_URL: cannot use the database ({type(exc).__name__})")
    for problem in problems:
        click.echo(f"problem: {problem}", err=True)
    if problems:
        sys.exit(1)
    click.echo("configuration is complete")


async def _clock_skew(database_url: str) -> float:
    engine = create_engine(database_url)
    try:
        return await clock_skew(engine)
    finally:
        await engine.dispose()


# --- serve and audit -----------------------------------------------------------------------


@main.command("serve")
@click.option("--host", default="0.0.0.0", show_default=True)  # noqa: S104 - a server
@click.option("--port", default=3000, show_default=True, type=int)
@click.option(
    "--socket-mode",
    is_flag=True,
    help="reach Slack over Socket Mode (SLACK_APP_TOKEN) instead of /slack/events",
)
def serve(host: str, port: int, socket_mode: bool) -> None:
    """Serve Slack (/slack/events), /gitlab/webhook, /healthz and /metrics.

    Applies pending migrations on start; stops cleanly on SIGTERM."""
    slack_secret = "SLACK_APP_TOKEN" if socket_mode else "SLACK_SIGNING_SECRET"
    settings = settings_or_exit("SLACK_BOT_TOKEN", slack_secret, "MIRRORBOT_SECRET_KEY")
    import uvicorn

    from bot.server import create_app

    # Database drivers hand work to threads; a shorter switch interval lets them hand it
    # back without waiting out the default 5 ms while the event loop holds the GIL.
    sys.setswitchinterval(0.0005)

    configure_logging(
        settings.secret_values(),
        json_lines=settings.mirrorbot_log_format == "json",
        level=getattr(logging, settings.mirrorbot_log_level),
    )
    uvicorn.run(
        create_app(settings, socket_mode=socket_mode),
        host=host,
        port=port,
        timeout_graceful_shutdown=8,
        log_level=settings.mirrorbot_log_level.lower(),
        log_config=None,
        access_log=False,  # RequestLog writes the one line per request
    )


PIPED_WIDTH = 400


@main.command("console")
@click.option("--demo", is_flag=True, help="use the built-in GitLab simulator with samples")
@click.option(
    "--as",
    "as_user",
    metavar="SLACK_USER_ID",
    help="act as this linked user (default: the first admin; in the demo, ada)",
)
@click.option(
    "-c",
    "command_text",
    metavar="COMMAND",
    help="run one command and exit: 0 if it succeeded, 1 if not (problems on stderr)",
)
@click.option("--buttons", is_flag=True, help="with -c: print the answer's buttons too")
def console(demo: bool, as_user: str | None, command_text: str | None, buttons: bool) -> None:
    """The /mirror commands in a terminal, answered as text."""
    from rich.console import Console

    from bot.console.app import run_console
    from bot.console.demo import Demo, running_demo

    # Piped output has no width to fit: a table row stays one line, for grep and friends.
    width = None if sys.stdout.isatty() else PIPED_WIDTH
    out = Console(highlight=False, soft_wrap=True, width=width)
    err = Console(highlight=False, soft_wrap=True, stderr=True)

    def session(settings: Settings, sandbox: Demo | None) -> Awaitable[int]:
        return run_console(
            settings,
            as_user=as_user,
            command=command_text,
            demo=sandbox,
            out=out,
            err=err,
            buttons=buttons,
        )

    if demo:
        with running_demo() as sandbox:
            code = run(lambda: session(sandbox.settings, sandbox))
    else:
        code = run(lambda: session(settings_or_exit("MIRRORBOT_SECRET_KEY"), None))
    sys.exit(code)


@main.command("audit")
@click.option("--project", help="only this project (full path)")
@click.option("--since", type=click.DateTime(), help="only entries from this UTC time on")
def audit_log(project: str | None, since: datetime | None) -> None:
    """Print the audit log as JSON lines."""
    settings = settings_or_exit()

    async def print_entries() -> None:
        upgrade_database(settings.database_url)
        engine = create_engine(settings.database_url)
        try:
            entries = await audit.list_entries(
                session_factory(engine),
                project=project,
                since=since.replace(tzinfo=UTC) if since else None,
            )
        finally:
            await engine.dispose()
        for entry in entries:
            click.echo(audit.as_json_line(entry))

    run(print_entries)
