"""The demo console at a real (pseudo-)terminal, driven as a person types: line editing,
history, Ctrl-C, output arriving above a half-typed line, syncs that leave the prompt."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

PROMPT = "mirror>"
UP = "\x1b[A"
CTRL_C, CTRL_D = "\x03", "\x04"
WAIT = 60  # seconds pexpect waits for each expected text; never an assertion on time
# Between the characters a person sees, a terminal stream carries styling and cursor moves.
_CONTROL = r"(?:\x1b\[[0-9;?]*[A-Za-z]|\x1b[>=]|[\r\x08])*"


def seen(text: str) -> re.Pattern[str]:
    """`text` as it appears on the screen, whatever control sequences lie between."""
    return re.compile(_CONTROL.join(re.escape(char) for char in text))


def expect(child: pexpect.spawn, *texts: str) -> int:
    return child.expect([seen(text) for text in texts])


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[pexpect.spawn]:
    env = {
        **os.environ,
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "TERM": "xterm",
        "NO_COLOR": "1",
        "PYTHONUNBUFFERED": "1",
        "PROMPT_TOOLKIT_NO_CPR": "1",
    }
    child = pexpect.spawn(
        sys.executable,
        ["-m", "bot", "console", "--demo"],
        env=env,
        encoding="utf-8",
        timeout=WAIT,
        dimensions=(50, 200),
        cwd=str(tmp_path),
    )
    try:
        expect(child, PROMPT)
        yield child
    finally:
        if child.isalive():
            child.terminate(force=True)


def run(child: pexpect.spawn, line: str, answer: str) -> None:
    child.send(line + "\r")
    expect(child, answer)
    expect(child, PROMPT)


def test_up_arrow_recalls_the_last_command_and_history_is_kept(terminal, tmp_path):
    run(terminal, "show demo/website 2", "Push mirror 2 of demo/website")
    terminal.send(UP + "\r")
    # The recalled line runs again (an unedited terminal would send `^[[A` and fail).
    expect(terminal, "Push mirror 2 of demo/website")
    expect(terminal, PROMPT)
    terminal.send(CTRL_D)
    terminal.expect(pexpect.EOF)
    history = (tmp_path / "data" / "mirrorbot" / "console_history").read_text()
    assert "show demo/website 2" in history


def test_ctrl_c_clears_the_line_and_keeps_the_session(terminal):
    terminal.send("delete demo/website 1")
    terminal.send(CTRL_C)
    terminal.send("whoami\r")
    expect(terminal, "ada")  # whoami answered: the deleted text did not run
    expect(terminal, PROMPT)
    assert terminal.isalive()
    # At an empty prompt: the first Ctrl-C only says how to leave, the second leaves.
    terminal.send(CTRL_C)
    expect(terminal, "Ctrl-C again or Ctrl-D to leave")
    assert terminal.isalive()
    terminal.send(CTRL_C)
    terminal.expect(pexpect.EOF)


def test_an_alert_printed_while_a_line_is_half_typed_keeps_the_line(terminal):
    terminal.send("list demo/we")
    expect(terminal, "list demo/we")  # echoed before the alert came
    expect(terminal, "Mirror failing — push mirror 4 of demo/api")
    expect(terminal, PROMPT + " list demo/we")  # the prompt is back, the line kept
    terminal.send("bsite\r")
    expect(terminal, "demo/website — 3 push mirrors")
    expect(terminal, PROMPT)
    run(terminal, "alerts", "[a] Retry sync")


def test_a_sync_of_all_mirrors_returns_the_prompt_at_once_then_prints_progress(terminal):
    terminal.send("sync demo/website\r")
    expect(terminal, "requested a sync of 2 push mirrors of demo/website")
    expect(terminal, PROMPT)
    # The prompt is usable while GitLab works: a command answers before the sync ends.
    terminal.send("whoami\r")
    index = expect(terminal, "ada", "synced 2 push mirrors")
    assert index == 0, "the sync finished before the prompt answered"
    expect(terminal, "demo/website · mirror 1 · ● finished")  # progress, as GitLab moves
    expect(terminal, "synced 2 push mirrors of demo/website")


def test_tab_completes_subcommands_and_project_paths(terminal):
    terminal.send("sh")
    expect(terminal, "sh")
    terminal.send("\t")
    expect(terminal, "ow")
    terminal.send(" demo/web")
    expect(terminal, "demo/web")
    terminal.send("\t")
    expect(terminal, "site")
    terminal.send(" 2\r")
    expect(terminal, "Push mirror 2 of demo/website")
