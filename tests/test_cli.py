"""`mirrorbot` as a person runs it: a real process, settings from the environment."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.simulator import GitLabSimulator
from bot.store.crypto import generate_key
from tests.conftest import ALICE_TOKEN, DAVE_TOKEN
from tests.fakes.slack import BOT_TOKEN, TEAM_ID, SlackStandIn


@pytest.fixture
def env(tmp_path: Path, gitlab_sim: GitLabSimulator, slack: SlackStandIn) -> dict[str, str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "GITLAB_", "MIRRORBOT_", "DATABASE_URL"))
    }
    return {
        **clean,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
        "MIRRORBOT_SECRET_KEY": generate_key(),
        "GITLAB_URL": gitlab_sim.url,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_API_URL": slack.api_url,
    }


def mirrorbot(
    env: dict[str, str], *args: str, stdin: str = "", cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=cwd,
    )


def test_help_lists_the_commands(env):
    result = mirrorbot(env, "--help")
    assert result.returncode == 0
    for command in ("db", "users", "check"):
        assert command in result.stdout


def test_link_stores_the_link_and_never_the_token_in_plain_text(env, tmp_path: Path):
    result = mirrorbot(env, "users", "link", "U123", stdin=f"{ALICE_TOKEN}\n")
    assert result.returncode == 0, result.stderr
    assert f"linked {TEAM_ID}/U123 to GitLab user alice" in result.stdout
    listing = mirrorbot(env, "users", "list")
    assert f"{TEAM_ID}\tU123\talice\tapi" in listing.stdout
    for path in tmp_path.iterdir():  # the database, its WAL and anything else written
        if path.is_file():
            assert ALICE_TOKEN.encode() not in path.read_bytes(), path
    assert ALICE_TOKEN not in result.stdout + result.stderr + listing.stdout


def test_link_with_an_explicit_team_needs_no_slack(env):
    del env["SLACK_BOT_TOKEN"]
    result = mirrorbot(env, "users", "link", "U9", "--team", "T777", stdin=ALICE_TOKEN)
    assert result.returncode == 0, result.stderr
    assert "linked T777/U9" in result.stdout


def test_a_wrong_token_exits_non_zero_with_one_clear_line(env):
    result = mirrorbot(env, "users", "link", "U123", stdin="glpat-wrong-token\n")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "error: GitLab rejected your token — run `/mirror login` again"
    ]
    assert "Traceback" not in result.stderr
    assert "glpat-wrong-token" not in result.stderr


def test_no_token_on_stdin_is_a_clear_error(env):
    result = mirrorbot(env, "users", "link", "U123", stdin="")
    assert result.returncode != 0
    assert "standard input" in result.stderr


def test_unlink(env):
    mirrorbot(env, "users", "link", "U123", stdin=DAVE_TOKEN)
    assert mirrorbot(env, "users", "unlink", "U123").returncode == 0
    again = mirrorbot(env, "users", "unlink", "U123")
    assert again.returncode != 0 and "not linked" in again.stderr
    assert "no linked users" in mirrorbot(env, "users", "list").stdout


def test_missing_secret_key_names_the_variable(env):
    del env["MIRRORBOT_SECRET_KEY"]
    result = mirrorbot(env, "users", "list")
    assert result.returncode != 0
    assert result.stderr.startswith("error: MIRRORBOT_SECRET_KEY is not set")


def test_malformed_setting_stops_with_one_line(env):
    env["MIRRORBOT_POLL_INTERVAL"] = "often"
    result = mirrorbot(env, "db", "upgrade")
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1
    assert "MIRRORBOT_POLL_INTERVAL" in result.stderr


def test_settings_come_from_a_dotenv_file(env, tmp_path: Path):
    key = env.pop("MIRRORBOT_SECRET_KEY")
    (tmp_path / ".env").write_text(f"MIRRORBOT_SECRET_KEY={key}\n")
    assert mirrorbot(env, "users", "list", cwd=tmp_path).returncode == 0


def test_db_upgrade(env):
    result = mirrorbot(env, "db", "upgrade")
    assert result.returncode == 0
    assert "up to date" in result.stdout


def test_check_passes_with_a_complete_configuration(env):
    env.update(
        {
            "SLACK_SIGNING_SECRET": "s",
            "GITLAB_SERVICE_TOKEN": ALICE_TOKEN,
            "GITLAB_WEBHOOK_SECRET": "w",
        }
    )
    result = mirrorbot(env, "check")
    assert result.returncode == 0, result.stderr
    assert "service token belongs to alice" in result.stdout
    assert f"team {TEAM_ID}" in result.stdout


def test_check_leaves_no_database_file_in_the_current_folder(env, tmp_path: Path):
    del env["DATABASE_URL"]  # the default: a SQLite file in the current folder
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    result = mirrorbot(env, "check", cwd=folder)
    assert "does not exist yet; serve creates it" in result.stdout
    assert list(folder.iterdir()) == []


def test_the_readme_names_exactly_the_settings_check_requires(env):
    for name in [k for k in env if k.startswith(("SLACK_", "GITLAB_", "MIRRORBOT_"))]:
        del env[name]
    required = set(re.findall(r"(\w+) is not set", mirrorbot(env, "check").stderr))
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    sentence = readme.split("at least ", 1)[1].split(")", 1)[0]
    assert required and set(re.findall(r"`([A-Z_]+)`", sentence)) == required


def test_check_says_exactly_what_is_wrong(env):
    env.update({"GITLAB_SERVICE_TOKEN": "glpat-revoked", "SLACK_BOT_TOKEN": "xoxb-wrong"})
    result = mirrorbot(env, "check")
    assert result.returncode != 0
    assert "SLACK_SIGNING_SECRET is not set" in result.stderr
    assert "GITLAB_WEBHOOK_SECRET is not set" in result.stderr
    assert "GITLAB_SERVICE_TOKEN / GITLAB_URL: GitLab rejected your token" in result.stderr
    assert "SLACK_BOT_TOKEN: Slack refused the bot token (invalid_auth)" in result.stderr
    assert "glpat-revoked" not in result.stderr + result.stdout


def test_serve_answers_health_and_stops_on_sigterm(env, slack: SlackStandIn):
    import signal
    import socket
    import time

    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env.update({"SLACK_SIGNING_SECRET": "s"})
    server = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                assert time.monotonic() < deadline, "serve did not come up"
                time.sleep(0.1)
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        assert httpx.get(f"http://127.0.0.1:{port}/metrics").status_code == 200
        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises SIGTERM for the conventional status.
        assert server.wait(timeout=10) in (0, -signal.SIGTERM)
        assert time.monotonic() - started < 10
        output = server.stdout.read() if server.stdout else ""
        assert "Finished server process" in output
        # Bolt's notice about the environment's SLACK_BOT_TOKEN would only alarm people.
        assert "will be unused" not in output
    finally:
        if server.poll() is None:
            server.kill()


def test_serve_without_slack_settings_names_what_is_missing(env):
    del env["SLACK_BOT_TOKEN"]
    result = mirrorbot(env, "serve", "--port", "1")
    assert result.returncode != 0
    assert result.stderr.startswith("error: SLACK_BOT_TOKEN is not set")


def test_socket_mode_needs_the_app_token(env):
    env["SLACK_SIGNING_SECRET"] = "s"
    result = mirrorbot(env, "serve", "--socket-mode", "--port", "1")
    assert result.returncode != 0
    assert result.stderr.startswith("error: SLACK_APP_TOKEN is not set")


def test_key_rotation_end_to_end(env):
    old = env["MIRRORBOT_SECRET_KEY"]
    assert mirrorbot(env, "users", "link", "U1", stdin=ALICE_TOKEN).returncode == 0
    new = generate_key()
    env["MIRRORBOT_SECRET_KEY"] = f"{new},{old}"
    rotated = mirrorbot(env, "keys", "rotate")
    assert rotated.returncode == 0 and "re-encrypted 1 stored secrets" in rotated.stdout
    env["MIRRORBOT_SECRET_KEY"] = new  # the old key is gone: the link still works
    assert mirrorbot(env, "users", "link", "U2", stdin=DAVE_TOKEN).returncode == 0
    from sqlalchemy import create_engine, text

    from bot.store.crypto import TokenCipher
    from bot.store.db import sync_url

    engine = create_engine(sync_url(env["DATABASE_URL"]))
    with engine.connect() as connection:
        stored = connection.execute(
            text("SELECT token_ciphertext FROM linked_accounts WHERE slack_user_id = 'U1'")
        ).scalar()
    engine.dispose()
    assert TokenCipher([new]).decrypt(stored) == ALICE_TOKEN


def test_audit_filters_by_project_and_time(env):
    import json as json_module
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import create_engine

    from bot.store.db import sync_url
    from bot.store.models import AuditEntry

    assert mirrorbot(env, "db", "upgrade").returncode == 0
    engine = create_engine(sync_url(env["DATABASE_URL"]))
    old = datetime.now(UTC) - timedelta(days=3)
    with engine.begin() as connection:
        for project, at in (
            ("group/app", old),
            ("group/app", datetime.now(UTC)),
            ("group/other", datetime.now(UTC)),
        ):
            connection.execute(
                AuditEntry.__table__.insert().values(
                    actor_id="U1", event="executed", operation="sync", project=project, at=at
                )
            )
    engine.dispose()
    since = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    result = mirrorbot(env, "audit", "--project", "group/app", "--since", since)
    lines = [json_module.loads(line) for line in result.stdout.splitlines()]
    assert result.returncode == 0 and len(lines) == 1
    [line] = lines
    assert line["project"] == "group/app" and line["operation"] == "sync"
    assert line["actor"] == "U1" and line["event"] == "executed"
    assert datetime.fromisoformat(line["at"]) >= datetime.now(UTC) - timedelta(days=1)


# --- an empty value is a missing one -----------------------------------------------------


@pytest.mark.parametrize(
    "name", ["SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "MIRRORBOT_SECRET_KEY"]
)
@pytest.mark.parametrize("empty", ["", "  "], ids=["empty", "blank"])
def test_serve_stops_on_an_empty_secret_with_one_line_naming_it(env, name, empty):
    env.update({"SLACK_SIGNING_SECRET": "s", name: empty})
    result = mirrorbot(env, "serve", "--port", "1")
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0
    assert len(lines) == 1 and lines[0].startswith(f"error: {name} is not set")


def test_an_empty_app_token_stops_socket_mode(env):
    env.update({"SLACK_SIGNING_SECRET": "s", "SLACK_APP_TOKEN": ""})
    result = mirrorbot(env, "serve", "--socket-mode", "--port", "1")
    assert result.returncode != 0
    assert result.stderr.startswith("error: SLACK_APP_TOKEN is not set")


def test_check_says_an_empty_webhook_secret_refuses_every_webhook(env):
    env.update(
        {
            "SLACK_SIGNING_SECRET": "s",
            "GITLAB_SERVICE_TOKEN": ALICE_TOKEN,
            "GITLAB_WEBHOOK_SECRET": "",
        }
    )
    result = mirrorbot(env, "check")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "problem: GITLAB_WEBHOOK_SECRET is not set: the secret token configured on the GitLab "
        "webhook (until it is set, /gitlab/webhook answers 401 to every request)"
    ]


def test_an_empty_setting_with_a_default_takes_the_default(env, tmp_path: Path):
    env.update({"MIRRORBOT_POLL_INTERVAL": "", "DATABASE_URL": ""})
    result = mirrorbot(env, "db", "upgrade", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "mirrorbot.db").exists()  # DATABASE_URL's default


def test_served_with_an_empty_webhook_secret_the_webhook_lets_nobody_in(env, tmp_path: Path):
    import socket
    import time

    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env.update({"SLACK_SIGNING_SECRET": "s", "GITLAB_WEBHOOK_SECRET": ""})
    server = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                assert time.monotonic() < deadline, "serve did not come up"
                time.sleep(0.1)
        push = b'{"object_kind": "push", "project": {"id": 1}}'
        for headers in ({"X-Gitlab-Token": ""}, {}, {"X-Gitlab-Token": "anything"}):
            response = httpx.post(
                f"{url}/gitlab/webhook",
                content=push,
                headers={"X-Gitlab-Event": "Push Hook", **headers},
            )
            assert response.status_code == 401, headers
    finally:
        server.terminate()
        server.wait(timeout=15)


# --- the audit log of what the CLI and the console do ------------------------------------


def audit_lines(env: dict[str, str]) -> list[dict]:
    import json as json_module

    result = mirrorbot(env, "audit")
    assert result.returncode == 0, result.stderr
    return [json_module.loads(line) for line in result.stdout.splitlines()]


def test_cli_link_and_unlink_are_audited(env):
    assert (
        mirrorbot(env, "users", "link", "U123", "--team", TEAM_ID, stdin=ALICE_TOKEN).returncode
        == 0
    )
    assert mirrorbot(env, "users", "unlink", "U123", "--team", TEAM_ID).returncode == 0
    import getpass

    lines = audit_lines(env)
    operator = f"cli:{getpass.getuser()}"
    assert [(line["operation"], line["actor"], line["subject"]) for line in lines] == [
        ("link", operator, "U123"),
        ("unlink", operator, "U123"),
    ]
    assert ALICE_TOKEN not in json.dumps(lines)


def test_the_console_acting_as_someone_leaves_a_trace(env):
    import getpass

    assert (
        mirrorbot(env, "users", "link", "UALICE", "--team", TEAM_ID, stdin=ALICE_TOKEN).returncode
        == 0
    )
    assert (
        mirrorbot(env, "users", "link", "UBOB", "--team", TEAM_ID, stdin=DAVE_TOKEN).returncode == 0
    )
    script = "as <@UEVE>\nas @UBOB\nwhoami\nquit\n"
    session = mirrorbot(env, "console", "--as", "UALICE", stdin=script)
    assert session.returncode == 0, session.stderr
    # Only a linked user: anyone else would only fail later, with less to go on.
    assert "<@UEVE> is not a linked user here; known users: UALICE (alice), UBOB (" in (
        session.stdout
    )
    acted = [line for line in audit_lines(env) if line["operation"] == "act-as"]
    assert [line["subject"] for line in acted] == ["UALICE", "UBOB"]
    assert {line["actor"] for line in acted} == {f"console:{getpass.getuser()}"}
    assert {line["channel"] for line in acted} == {"CCONSOLE"}


def test_key_rotation_re_encrypts_pending_approvals_holding_a_pull_mirror_password(env):
    import asyncio
    import json as json_module

    from sqlalchemy import create_engine, text

    from bot.domain.approvals import Approvals
    from bot.domain.mirrors import Operation, OperationRequest
    from bot.store.crypto import SecretKeyError, TokenCipher
    from bot.store.db import create_engine as create_async_engine
    from bot.store.db import session_factory, sync_url

    old = env["MIRRORBOT_SECRET_KEY"]
    assert mirrorbot(env, "db", "upgrade").returncode == 0
    password = "pull-s3cret-password"

    async def request_pull_config() -> None:
        engine = create_async_engine(env["DATABASE_URL"])
        try:
            await Approvals(session_factory(engine), TokenCipher([old])).request(
                OperationRequest(
                    Operation.PULL_CONFIG,
                    1,
                    "group/app",
                    attributes={"url": "https://up.example/x.git", "auth_password": password},
                ),
                team_id=TEAM_ID,
                channel_id="C1",
                requester_id="U1",
                requester_gitlab_user_id=1,
                mirror_url="https://up.example/x.git",
            )
        finally:
            await engine.dispose()

    asyncio.run(request_pull_config())
    new = generate_key()
    env["MIRRORBOT_SECRET_KEY"] = f"{new},{old}"
    rotated = mirrorbot(env, "keys", "rotate")
    assert rotated.returncode == 0 and "re-encrypted 1 stored secrets" in rotated.stdout
    engine = create_engine(sync_url(env["DATABASE_URL"]))
    with engine.connect() as connection:
        stored = connection.execute(
            text("SELECT params_ciphertext FROM approval_requests WHERE status = 'pending'")
        ).scalar_one()
    engine.dispose()
    # The new key alone opens it, the old one no longer does.
    assert json_module.loads(TokenCipher([new]).decrypt(stored))["auth_password"] == password
    with pytest.raises(SecretKeyError):
        TokenCipher([old]).decrypt(stored)
