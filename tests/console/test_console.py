"""`mirrorbot console`: the same commands, results and rendering as Slack, in a terminal."""

import asyncio
import contextlib
import csv
import io
import os
import re
import subprocess
import sys

import pytest
from rich.console import Console

from bot.commands.results import MirrorList
from bot.console.app import run_console
from bot.console.demo import running_demo
from bot.console.render import to_terminal
from bot.domain.accounts import Accounts, SlackUser
from bot.domain.mirrors import ProjectMirrors
from bot.gitlab.client import create_http_client
from bot.gitlab.models import PushMirror
from bot.gitlab.refs import ProjectRef
from bot.slack.blocks import mirrors as mirror_blocks
from bot.slack.blocks.replies import render
from bot.store.crypto import TokenCipher, generate_key
from bot.store.db import create_engine, session_factory
from bot.store.migrate import upgrade_database
from tests.conftest import ALICE_TOKEN
from tests.fakes.slack import TEAM_ID
from tests.slack.conftest import bot_settings


def console(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "console", "--demo", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


# --- non-interactive: -c, as scripts use it ---------------------------------------------------


def test_list_prints_the_mirrors_and_succeeds():
    result = console("-c", "list demo/website")
    assert result.returncode == 0, result.stderr
    assert "demo/website — 3 push mirrors" in result.stdout
    assert "https://*****:*****@github.example.org/acme/website.git" in result.stdout
    assert "hunter2" not in result.stdout
    assert "Sync now" not in result.stdout  # -c prints buttons only with --buttons
    with_buttons = console("-c", "list demo/website", "--buttons").stdout
    assert "[a] Sync now   [b] Disable   [c] Details   [d] Rotate credentials   [e] Delete" in (
        with_buttons
    )
    # A disabled mirror offers no Sync: GitLab would refuse it.
    assert "[l] Enable   [m] Details   [n] Delete" in with_buttons


def test_the_leading_slash_command_is_optional():
    assert console("-c", "/mirror show demo/api 4").returncode == 0


def test_show_and_key():
    show = console("-c", "show demo/api 4")
    assert "Authentication failed" in show.stdout
    key = console("-c", "key demo/website 2")
    assert key.returncode == 0 and "ssh-ed25519" in key.stdout


def test_watch_into_a_named_channel_works_in_the_console():
    result = console("-c", "watch demo/website #ops")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "#ops now gets alerts for the mirrors of demo/website" in result.stdout
    for channel in ("<#COPS|ops>", "#COPS"):  # Slack's escaped form and the raw id work too
        assert "#ops now gets alerts" in console("-c", f"watch demo/website {channel}").stdout


def test_watching_again_says_it_is_already_watching():
    result = console("-c", "watch demo/website")  # the demo channel watches it from the start
    assert result.returncode == 0
    assert "#demo is already watching demo/website (since @UADA asked)" in result.stdout


def test_bad_input_fails_with_one_line():
    result = console("-c", "show demo/website twelve")
    assert result.returncode == 1
    assert "is not a mirror id" in result.stderr and not result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert console("-c", "key demo/website 1").returncode == 1  # a password mirror


def test_sync_follows_the_mirror_until_it_settles():
    result = console("-c", "sync demo/website 1")
    assert result.returncode == 0
    assert "requested a sync of 1 push mirror" in result.stdout
    settled = result.stdout.split("Following the sync")[-1]
    assert "synced 1 push mirror" in settled and "● finished" in settled


def test_a_sync_gitlab_reports_failed_exits_non_zero_with_its_likely_cause():
    result = console("-c", "sync demo/api 4")
    assert result.returncode == 1, result.stdout
    settled = result.stdout.split("Following the sync")[-1]
    assert "requested failed: mirror 4 of demo/api" in settled
    assert "Authentication failed for" in settled
    assert "Likely cause: Authentication failed." in settled
    assert "synced" not in result.stdout


def test_show_names_the_likely_cause_of_a_failing_mirror():
    show = console("-c", "show demo/api 4")
    assert "Likely cause: Authentication failed." in show.stdout
    assert "renew the token or password" in show.stdout


def test_a_change_that_needs_approval_succeeds_by_asking():
    result = console("-c", "disable demo/website 1", "--buttons")
    assert result.returncode == 0
    assert "asks to disable push mirror" in result.stdout
    assert "[a] Approve" in result.stdout


# --- interactive: a scripted session through standard input -----------------------------------


def test_a_scripted_session_toggles_deletes_with_approval_and_leaves():
    script = (
        "\n".join(
            [
                "list demo/website",
                "3",  # a number is not a button: it could be mistaken for mirror 3
                "l",  # Enable on the disabled mirror 3
                "delete demo/website 1",
                "a",  # Approve: refused, it is ada's own request
                "as NOBODY",
                "as UGRACE",
                "approvals",
                "a",  # grace approves
                "list demo/website",
                "frobnicate",
                "quit",
            ]
        )
        + "\n"
    )
    result = console(stdin=script)
    out = result.stdout
    assert result.returncode == 0, result.stderr
    assert "@UADA enabled push mirror 3" in out
    assert "you cannot approve your own request" in out
    assert "buttons are picked by their letter" in out
    assert "NOBODY is not a linked user here; known users: UADA (ada), UGRACE (grace)" in out
    assert "you are now acting as UGRACE" in out
    assert "executed — approved by @UGRACE, ran with @UADA's GitLab token" in out
    assert "demo/website — 2 push mirrors" in out  # mirror 1 is gone
    assert "unknown command frobnicate" in out


def test_end_of_input_leaves_cleanly():
    result = console(stdin="help\n")
    assert result.returncode == 0 and "Mirrorbot" in result.stdout


async def test_forms_are_prompts_and_secrets_are_not_echoed():
    answers = iter(["https://bot:tok@new.example.org/x.git", "password", "y", "n", "n", ""])
    secrets: list[str] = []
    out = io.StringIO()
    with running_demo() as demo:
        from bot.console.app import _demo_actor
        from bot.console.session import ConsoleSession, Prompter
        from bot.services import build_services
        from bot.store.migrate import upgrade_database

        upgrade_database(demo.settings.database_url)
        services = build_services(demo.settings)
        try:
            actor = await _demo_actor(services, demo, None)
            session = ConsoleSession(
                services,
                actor,
                Console(file=out, width=200),
                Prompter(ask=lambda _: next(answers), secret=lambda p: secrets.append(p) or "x"),
            )
            assert await session.handle("add demo/api")
            assert "added push mirror" in out.getvalue()
            answers = iter(["", "puller", "y", "n", "n", "n"])
            session.prompter = Prompter(
                ask=lambda _: next(answers), secret=lambda p: secrets.append(p) or "pw-secret"
            )
            assert await session.handle("pull config demo/website")
            assert "asks to configure the pull mirror" in out.getvalue()
            assert "pw-secret" not in out.getvalue()
            assert any("hidden" in prompt for prompt in secrets)
        finally:
            await services.close()


@contextlib.asynccontextmanager
async def demo_session(answers: list[str]):
    """A console session on the demo that answers its form prompts from `answers`; yields
    (session, world, output, the prompts asked)."""
    from bot.console.app import _demo_actor
    from bot.console.session import ConsoleSession, Prompter
    from bot.services import build_services
    from bot.store.migrate import upgrade_database

    prompts: list[str] = []
    given = iter(answers)

    def ask(prompt: str) -> str:
        prompts.append(prompt)
        return next(given)

    out = io.StringIO()
    with running_demo() as demo:
        upgrade_database(demo.settings.database_url)
        services = build_services(demo.settings)
        try:
            actor = await _demo_actor(services, demo, None)
            session = ConsoleSession(
                services, actor, Console(file=out, width=200), Prompter(ask=ask)
            )
            yield session, demo.world, out, prompts
        finally:
            await services.close()


async def test_the_console_edit_removes_a_branch_filter():
    # auth, enabled, keep divergent refs, protected only: kept; the branch filter: removed
    async with demo_session(["", "", "", "", "-"]) as (session, world, out, prompts):
        project = next(p for p in world.projects.values() if p.path == "demo/website")
        mirror = project.push_mirrors[1]
        mirror.mirror_branch_regex = "^release/"
        assert await session.handle("edit demo/website 1")
        assert "updated push mirror 1" in out.getvalue()
        assert "^release/" in prompts[-1] and "- for none" in prompts[-1]
        assert not mirror.mirror_branch_regex and mirror.only_protected_branches is False


async def test_a_bad_answer_is_asked_again_and_the_other_answers_are_kept():
    answers = [
        "ftp://backup.example.org/x.git",  # refused: asked again
        "https://backup.example.org/x.git",
        "bogus",  # refused: asked again
        "password",
        "n",  # enabled
        "y",  # keep divergent refs
        "y",  # only protected branches
        "^main$",  # refused with protected only: asked again
        "",
    ]
    async with demo_session(answers) as (session, world, out, prompts):
        assert await session.handle("add demo/api")
        shown = out.getvalue()
        assert "added push mirror" in shown
        assert "GitLab accepts only http://" in shown and "not both" in shown
        asked = [prompt.split(" [")[0].split(":")[0] for prompt in prompts]
        assert asked.count("Target repository URL") == 2
        assert asked.count("Enabled") == 1 and asked.count("Only protected branches") == 1
        project = next(p for p in world.projects.values() if p.path == "demo/api")
        added = max(project.push_mirrors.values(), key=lambda m: m.id)
        assert added.url == "https://backup.example.org/x.git"
        assert (added.enabled, added.keep_divergent_refs) == (False, True)
        assert added.only_protected_branches is True and not added.mirror_branch_regex


async def test_the_demo_alert_appears_in_the_console():
    import asyncio

    from bot.console.session import print_alerts_forever

    out = io.StringIO()
    with running_demo() as demo:
        from bot.console.app import _demo_actor
        from bot.console.session import ConsoleSession
        from bot.services import build_services
        from bot.store.migrate import upgrade_database

        upgrade_database(demo.settings.database_url)
        services = build_services(demo.settings)
        try:
            session = ConsoleSession(
                services, await _demo_actor(services, demo, None), Console(file=out, width=200)
            )
            task = asyncio.create_task(print_alerts_forever(session, every=0.1))
            for _ in range(100):
                if "Mirror failing" in out.getvalue():
                    break
                await asyncio.sleep(0.05)
            task.cancel()
            assert "Mirror failing — push mirror 4 of demo/api" in out.getvalue()
            # Printed in the background without buttons (they would change what a letter
            # means while you type); `alerts` shows it again with them.
            assert "Retry sync" not in out.getvalue()
            assert await session.handle("alerts")
            assert "[a] Retry sync   [b] Rotate credentials   [c] Disable" in out.getvalue()
        finally:
            await services.close()


# --- one rendering for both -------------------------------------------------------------------


def test_slack_and_console_render_from_the_same_helpers(monkeypatch: pytest.MonkeyPatch):
    mirror = PushMirror(id=9, url="https://h.example/x.git", enabled=True, update_status="finished")
    reply = MirrorList(ProjectMirrors(ProjectRef.of(1, "g/p"), [mirror], None, None))
    original = mirror_blocks.push_mirror_summary
    # A new field in one rendering helper...
    monkeypatch.setattr(
        mirror_blocks, "push_mirror_summary", lambda m: original(m) + "\nregion: *eu-west*"
    )
    slack_text = str(render(reply).blocks)
    buffer = io.StringIO()
    Console(file=buffer, width=200).print(to_terminal(render(reply))[0])
    # ...reaches Slack and the console alike.
    assert "region: *eu-west*" in slack_text
    assert "region: eu-west" in buffer.getvalue()


async def test_the_console_runs_a_command_on_a_real_configuration_without_a_terminal(
    sample, gitlab_sim, slack, sqlite_url
):
    settings = bot_settings(sqlite_url, gitlab_sim.url, slack, generate_key())
    await asyncio.to_thread(upgrade_database, sqlite_url)
    engine = create_engine(sqlite_url)
    http = create_http_client(gitlab_sim.url)
    try:
        accounts = Accounts(session_factory(engine), TokenCipher(settings.secret_keys), http)
        await accounts.link(SlackUser(TEAM_ID, "UALICE"), ALICE_TOKEN, linked_by="test")
    finally:
        await http.aclose()
        await engine.dispose()

    async def run(command: str) -> tuple[int, str]:
        buffer = io.StringIO()  # no terminal: a file, as when output is piped
        status = await run_console(
            settings,
            as_user="UALICE",
            command=command,
            demo=None,
            out=Console(file=buffer, width=200),
        )
        return status, buffer.getvalue()

    status, listing = await run("list group/app")
    assert status == 0
    assert "github.example.org/acme/app.git" in listing and "s3cr3t" not in listing
    status, error = await run(f"show group/app {sample.ssh_mirror.id + 100}")
    assert status == 1 and error.strip()


async def test_a_console_edit_that_disables_needs_the_approval_disable_needs():
    # Edit prompts: auth, Enabled (no), keep divergent, only protected, branch filter.
    answers = iter(["password", "n", "n", "n", ""])
    out = io.StringIO()
    with running_demo() as demo:
        from bot.console.app import _demo_actor
        from bot.console.session import ConsoleSession, Prompter
        from bot.services import build_services
        from bot.store.migrate import upgrade_database

        upgrade_database(demo.settings.database_url)
        services = build_services(demo.settings)
        try:
            actor = await _demo_actor(services, demo, None)
            session = ConsoleSession(
                services,
                actor,
                Console(file=out, width=200),
                Prompter(ask=lambda _: next(answers), secret=lambda _: ""),
            )
            assert await session.handle("edit demo/website 1")
            shown = out.getvalue()
            assert "asks to edit push mirror 1" in shown
            assert "This edit disables the mirror, so it needs the approval that `disable`" in shown
            assert "Enabled: yes → no" in shown
            website = next(p for p in demo.world.projects.values() if p.path == "demo/website")
            assert website.push_mirrors[1].enabled is True
        finally:
            await services.close()


def test_demo_login_shows_the_code_and_link_and_is_approved_as_the_console_user():
    result = console("-c", "login", "--as", "UGRACE")
    assert result.returncode == 0, result.stderr
    code = result.stdout.split("shows the code `", 1)[1].split("`", 1)[0]
    assert f"/oauth/device?user_code={code}" in result.stdout
    assert "Linked as @grace through GitLab OAuth" in result.stdout


def test_inventory_prints_the_summary_and_an_aligned_table():
    result = console("-c", "inventory demo")
    assert result.returncode == 0, result.stderr
    assert "Inventory of demo/" in result.stdout
    lines = result.stdout.splitlines()
    [header] = [line for line in lines if line.startswith("project ")]
    rows = [line for line in lines if line.startswith("demo/")]
    assert rows and all(
        row.index(" push ") == header.index(" dir ") for row in rows if " push " in row
    )
    assert "hunter2" not in result.stdout


def test_inventory_csv_prints_the_file_alone():
    result = console("-c", "inventory demo --csv")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("project,direction,mirror,host,path,url,status")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows and all(row["project"].startswith("demo/") for row in rows)
    assert "hunter2" not in result.stdout and "Inventory of" not in result.stdout


def test_the_demo_s_failing_mirror_is_rotated_with_any_new_token_and_finishes():
    assert "failed" in console("-c", "show demo/api 4").stdout  # the demo's failing mirror
    result = console("-c", "rotate demo/api 4", stdin="deploy\nany-new-token\n")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "finished" in result.stdout
    assert "replaces 4, which is deleted" in result.stdout
    assert "any-new-token" not in result.stdout


def test_a_demo_rotation_with_the_expired_token_again_fails_and_keeps_the_old():
    result = console("-c", "rotate demo/api 4", stdin="deploy\nexpired-token\n")
    assert result.returncode != 0
    assert "the new token was rejected too" in result.stdout
    assert "push mirror 4 is kept" in result.stdout


async def test_a_console_ssh_rotation_offers_key_installed_as_a_choice():
    async with demo_session([]) as (session, world, out, prompts):
        website = next(p for p in world.projects.values() if p.path == "demo/website")
        ssh = next(m for m in website.push_mirrors.values() if m.auth_method != "password")
        assert await session.handle(f"rotate demo/website {ssh.id}")
        assert "Key installed — switch" in out.getvalue()
        assert prompts == []  # nothing to type for an SSH mirror
        assert ssh.id in website.push_mirrors
        choice = next(c.key for c in session.choices if c.action_id == "rotation-key-installed")
        assert await session.handle(choice)
        assert "finished" in out.getvalue()
        assert ssh.id not in website.push_mirrors


async def test_a_console_rotation_that_needs_approval_runs_once_grace_approves():
    async with demo_session(["deploy"]) as (session, world, out, _prompts):
        session.services.settings.mirrorbot_approval_required = ["delete", "rotate"]
        session.prompter.secret = lambda _: "any-new-token"
        assert await session.handle("rotate demo/api 4")
        assert "asks to rotate the credentials of push mirror" in out.getvalue()
        api = next(p for p in world.projects.values() if p.path == "demo/api")
        assert 4 in api.push_mirrors
        await session.act_as("UGRACE")
        assert await session.handle("approvals")
        approve = next(c.key for c in session.choices if c.action_id == "approval-approve")
        assert await session.handle(approve)
        assert "replaces 4, which is deleted" in out.getvalue()
        assert 4 not in api.push_mirrors


# --- honest scripting and readable text ---------------------------------------------------------


def test_status_before_any_check_says_nothing_was_checked_and_refresh_checks():
    before = console("-c", "status")
    assert before.returncode == 0
    assert "nothing has been checked yet" in before.stdout and "0 failing" not in before.stdout
    refreshed = console("-c", "status --refresh")
    assert refreshed.returncode == 0
    assert "6 mirrors, 1 failing (just refreshed)" in refreshed.stdout


def test_status_is_in_aligned_columns_failing_first():
    lines = console("-c", "status --refresh").stdout.splitlines()
    header = next(line for line in lines if line.startswith("status"))
    rows = [line for line in lines if line.startswith(("●", "○"))]
    assert rows[0].startswith("● failed") and "Authentication failed" in rows[0]
    for column in ("project", "mirror", "last success", "target"):
        start = header.index(column)
        # Each row's value starts where its column's header does.
        assert all(row[start] != " " and row[start - 1] == " " for row in rows), column


def test_times_are_absolute_and_name_their_time_zone():
    result = subprocess.run(
        [sys.executable, "-m", "bot", "console", "--demo", "-c", "show demo/website 1"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TZ": "Europe/Paris"},
    )
    assert re.search(r"Last success: \d{4}-\d\d-\d\d \d\d:\d\d CET", result.stdout), result.stdout
    assert "Auth method: password" in result.stdout
    assert "Auth method: SSH key" in console("-c", "show demo/website 2").stdout


async def test_yes_no_questions_take_only_yes_or_no():
    # URL, auth, then "Enabled" answered "maybe" (asked again) and "no".
    answers = ["https://backup.example.org/y.git", "password", "maybe", "no", "n", "n", ""]
    async with demo_session(answers) as (session, world, out, prompts):
        assert await session.handle("add demo/api")
        assert "added push mirror" in out.getvalue()
        assert sum(prompt.startswith("Enabled") for prompt in prompts) == 2
        assert "please answer yes or no" in prompts[3]
        project = next(p for p in world.projects.values() if p.path == "demo/api")
        assert max(project.push_mirrors.values(), key=lambda m: m.id).enabled is False
