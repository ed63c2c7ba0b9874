"""The console at a terminal: prompt_toolkit's line editing (arrows, Ctrl-R, history kept
in the user's data folder, Tab completion), output that prints above the line being typed,
and Ctrl-C that clears a line or stops a command but never ends the session by accident."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

import platformdirs
from prompt_toolkit import PromptSession
from prompt_toolkit.application import run_in_terminal
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory, InMemoryHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent

from bot.commands.parse import USAGE, UsageError
from bot.console.session import QUIT, ConsoleSession, Prompter

PROMPT = "mirror> "
# Console words beside the /mirror subcommands.
CONSOLE_WORDS = ("alerts", "as", "quit")
PROJECT_FIRST = {
    "list", "show", "key", "sync", "enable", "disable", "delete", "add", "edit", "watch",
    "unwatch", "unmute", "rotate",
}  # fmt: skip
MIRROR_SECOND = {"show", "key", "sync", "enable", "disable", "delete", "edit", "unmute", "rotate"}
LEAVE_HINT = "(press Ctrl-C again or Ctrl-D to leave)"


def history_path() -> Path:
    """The user's data folder (XDG_DATA_HOME, else ~/.local/share on Linux)."""
    folder = Path(platformdirs.user_data_dir("mirrorbot", appauthor=False))
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "console_history"


class ConsoleCompleter(Completer):
    """Subcommands first, then the project paths and mirror ids the session knows of."""

    def __init__(self, session: ConsoleSession, users: Callable[[], Iterable[str]]) -> None:
        self.session = session
        self.users = users

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterable[Completion]:
        words = document.text_before_cursor.lstrip().removeprefix("/mirror ").split()
        if not words or document.text_before_cursor.endswith(" "):
            words.append("")
        typed = words[-1]
        for candidate in sorted(self.candidates(words[:-1])):
            if candidate.startswith(typed) and candidate != typed:
                yield Completion(candidate, start_position=-len(typed))

    def candidates(self, before: list[str]) -> Iterable[str]:
        projects = self.session.known_mirrors
        if not before:
            return {*USAGE, *CONSOLE_WORDS}
        command = before[0]
        if command == "pull" and len(before) == 1:
            return {"sync", "config", *projects}
        if command == "pull" and len(before) == 2 and before[1] in ("sync", "config"):
            return set(projects)
        if command == "as" and len(before) == 1:
            return set(self.users())
        if command == "status" and len(before) == 1:
            return {"--refresh"}
        if command in PROJECT_FIRST and len(before) == 1:
            return set(projects)
        if command in MIRROR_SECOND and len(before) == 2:
            return {str(mirror_id) for mirror_id in projects.get(before[1], ())}
        return set()


def _key_bindings(reader: TerminalReader) -> KeyBindings:
    bindings = KeyBindings()

    @bindings.add("c-c")
    def _interrupt(event: KeyPressEvent) -> None:
        buffer = event.app.current_buffer
        if buffer.text:
            buffer.reset()  # Ctrl-C clears the line, as in a shell
            reader.leave_armed = False
        elif reader.leave_armed:
            event.app.exit(exception=EOFError())
        else:
            reader.leave_armed = True
            run_in_terminal(lambda: print(LEAVE_HINT))

    return bindings


class TerminalReader:
    """Reads command lines at a terminal; forms' questions go through `prompter()`."""

    def __init__(
        self,
        session: ConsoleSession,
        users: Callable[[], Iterable[str]],
        history: Path | None = None,
    ) -> None:
        self.leave_armed = False
        self.prompt: PromptSession[str] = PromptSession(
            history=FileHistory(str(history or history_path())),
            completer=ConsoleCompleter(session, users),
            key_bindings=_key_bindings(self),
            enable_history_search=False,
        )
        self.form_prompt: PromptSession[str] = PromptSession(history=InMemoryHistory())

    async def read_line(self) -> str | None:
        """The next line, or None when the person leaves (Ctrl-D, or Ctrl-C twice)."""
        try:
            line = await self.prompt.prompt_async(PROMPT)
        except EOFError:
            return None
        self.leave_armed = False
        return line

    def prompter(self) -> Prompter:
        """Form questions at the terminal. They block the session until answered, like a
        modal; Ctrl-C abandons the form, not the console."""

        def ask(question: str, *, secret: bool = False) -> str:
            try:
                return self.form_prompt.prompt(question, is_password=secret, in_thread=True)
            except (KeyboardInterrupt, EOFError):
                raise UsageError("form abandoned") from None

        return Prompter(ask=ask, secret=lambda question: ask(question, secret=True))


async def run_interactive(
    session: ConsoleSession, reader: TerminalReader, before: Callable[[], Awaitable[None]]
) -> None:
    """The read–run loop. A running command is a task: Ctrl-C (SIGINT, the terminal is not
    in raw mode then) cancels that command alone."""
    from prompt_toolkit.patch_stdout import patch_stdout

    loop = asyncio.get_running_loop()
    with patch_stdout(raw=True):
        await before()
        while True:
            line = await reader.read_line()
            if line is None or line.strip().lower() in QUIT:
                break
            command = asyncio.create_task(session.handle(line))
            loop.add_signal_handler(signal.SIGINT, command.cancel)
            try:
                await command
            except asyncio.CancelledError:
                if not command.cancelled():
                    raise
                session.out.print("cancelled", style="yellow")
            finally:
                loop.remove_signal_handler(signal.SIGINT)
    print()
