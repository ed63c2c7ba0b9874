"""A console session: read a line, run it like `/mirror …`, print what Slack would show.

Letters pick a button from the last answer; forms (login, add, edit, pull config, rotate)
are asked as prompts, secrets without echo; `as USER` switches the acting user; `alerts`
shows the recent alerts again; `quit` leaves. Syncs are followed in the background when
interactive.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from rich.console import Console

from bot.commands.actions import MirrorRef, RotationActions
from bot.commands.buttons import press
from bot.commands.parse import Command, UsageError, parse_command
from bot.commands.results import (
    ApprovalDecided,
    DeviceLoginFinished,
    DeviceLoginStarted,
    Info,
    InventoryReport,
    Problem,
    Reply,
    RotationProgress,
    StatusReport,
    SyncStarted,
)
from bot.commands.rotation import mirror_to_rotate, request_rotation
from bot.commands.run import MODAL_COMMANDS, Actor, request_change, run_command, run_guarded
from bot.console.render import Choice, inventory_table, mrkdwn, status_table, to_terminal
from bot.domain import audit, monitor, outbox
from bot.domain.errors import DomainError
from bot.domain.inventory import inventory_csv
from bot.domain.mirrors import Operation, SyncProgress, follow_push_mirror, pull_mirror_or_none
from bot.domain.rotations import NewCredentials, Rotation, State
from bot.domain.validation import branch_regex_problem, mirror_url_problem
from bot.gitlab.errors import GitLabError
from bot.gitlab.models import PullMirror
from bot.gitlab.refs import ProjectRef
from bot.services import Services
from bot.slack.blocks.alerts import render_outbox
from bot.slack.blocks.replies import render, sync_progress
from bot.slack.blocks.rotations import rotation_message
from bot.slack.blocks.text import SlackMessage, status_label

QUIT = {"quit", "exit", ":q"}
CLEAR = "-"  # the answer that empties a prompt which has a current value
ATTEMPTS = 3  # times a form asks again for an answer it cannot take
CHOICE_KEY = re.compile(r"[a-z]{1,2}")
RECENT_ALERTS = 10  # what `alerts` shows again
YES, NO = ("y", "yes"), ("n", "no")
Ask = Callable[[str], str]


@dataclass
class Prompter:
    """How a form asks its questions; tests give answers instead of a keyboard."""

    ask: Ask = input
    secret: Ask = getpass.getpass

    def text(self, label: str, default: str | None = None) -> str:
        shown = f" [{default}]" if default else ""
        answer = self.ask(f"{label}{shown}: ").strip()
        return answer or (default or "")

    def yes(self, label: str, default: bool) -> bool:
        """Only yes or no (or Enter for the default): a typo must not decide for you."""
        question = f"{label} [{'Y/n' if default else 'y/N'}]: "
        for _ in range(ATTEMPTS):
            answer = self.ask(question).strip().lower()
            if not answer:
                return default
            if answer in YES or answer in NO:
                return answer in YES
            question = f"{label}: please answer yes or no [{'Y/n' if default else 'y/N'}]: "
        raise UsageError(f"{label}: the answer is yes or no")


@dataclass
class ConsoleSession:
    services: Services
    actor: Actor
    out: Console
    prompter: Prompter = field(default_factory=Prompter)
    choices: list[Choice] = field(default_factory=list)
    # Who sits at the terminal: the console answers to no Slack login, so the audit log
    # says which local account acted as which Slack user.
    operator: str = "console"
    # Told each device login's user code and Slack user, once shown (the demo approves it).
    on_device_login: Callable[[str, str], None] | None = None
    err: Console | None = None  # problems go here (stderr under `-c`); None: to `out`
    buttons: bool = True  # print the choices (`-c` prints them only with --buttons)
    # Interactive: a sync is followed by a background task and the prompt comes back.
    background: bool = False
    recent_alerts: deque[SlackMessage] = field(default_factory=lambda: deque(maxlen=RECENT_ALERTS))
    # Project paths and their mirror ids seen so far: what line completion offers.
    known_mirrors: dict[str, set[int]] = field(default_factory=dict)
    followers: set[asyncio.Task[bool]] = field(default_factory=set)

    async def act_as(self, user_id: str) -> None:
        """Act as `user_id` from now on, and leave a trace of it in the audit log."""
        await audit.append(
            self.services.sessions,
            actor=self.operator,
            operation=audit.Action.ACT_AS,
            subject=user_id,
            channel=self.actor.channel_id,
            result=f"the console acts as {user_id}",
        )
        self.actor = replace(self.actor, user_id=user_id)

    async def handle(self, line: str) -> bool:
        """Run one line; True when it succeeded (what `-c` turns into the exit status)."""
        line = line.strip()
        if not line:
            return True
        if CHOICE_KEY.fullmatch(line.lower()):
            if choice := next((c for c in self.choices if c.key == line.lower()), None):
                return await self.pick(choice)
            return self.show(Problem(self._no_such_choice(line)))
        if line.isdigit():
            return self.show(Problem(self._no_such_choice(line)))
        if line.lower() == "alerts":
            return self.show_recent_alerts()
        if line.split()[0] == "as" and len(line.split()) == 2:
            return await self.switch_user(line.split()[1])
        try:
            command = parse_command(line, self.services.settings.gitlab_url)
        except UsageError as exc:
            return self.show(Problem(exc.message, exc.usage))
        if command.name in MODAL_COMMANDS:
            reply = await run_guarded(lambda: self.form(command))
        else:
            reply = await run_command(command, self.actor, self.services)
        if isinstance(reply, InventoryReport) and reply.as_csv:
            # The file alone, so `-c "inventory G --csv" > mirrors.csv` is the file.
            self.out.print(inventory_csv(reply.inventory), end="", markup=False, highlight=False)
            return True
        return await self.show_and_follow(reply)

    async def show_and_follow(self, reply: Reply) -> bool:
        ok = self.show(reply)
        if isinstance(reply, InventoryReport) and reply.inventory.rows:
            self.out.print(inventory_table(reply.inventory), markup=False, highlight=False)
        if isinstance(reply, SyncStarted):
            ok = await self.follow(reply) and ok
        if isinstance(reply, RotationProgress):
            ok = await self.drive_rotation(reply.rotation.id) and ok
        if isinstance(reply, ApprovalDecided) and reply.approval.operation is Operation.ROTATE:
            # No worker runs here: an approved rotation is driven by whoever approved it.
            rotation = await self.services.rotations.of_approval(reply.approval.id)
            if rotation is not None and await self.services.rotations.claim(rotation.id):
                ok = await self.drive_rotation(rotation.id) and ok
        return ok

    def _no_such_choice(self, typed: str) -> str:
        keys = [c.key for c in self.choices]
        if not keys:
            return f"there is no choice `{typed[:10]}`: the last answer had no buttons"
        shown = ", ".join(keys[:8]) + (" …" if len(keys) > 8 else "")
        return f"there is no choice `{typed[:10]}`: buttons are picked by their letter ({shown})"

    async def pick(self, choice: Choice) -> bool:
        if choice.action_id in (RotationActions.ROTATE, RotationActions.RECREATE):
            target = MirrorRef.model_validate_json(choice.value)
            assert target.mirror_id is not None
            project = target.project
            mirror_id = target.mirror_id
            reply = await run_guarded(lambda: self.rotate(project, mirror_id))
        else:
            reply = await press(choice.action_id, choice.value, self.actor, self.services)
        return await self.show_and_follow(reply)

    async def switch_user(self, typed: str) -> bool:
        """Only a linked user of this workspace: acting as anyone else would only fail later."""
        user_id = typed.removeprefix("<").removeprefix("@").removesuffix(">").upper()
        links = await self.services.accounts.list_links(self.actor.team_id)
        if user_id not in {link.slack_user_id for link in links}:
            known = ", ".join(f"{link.slack_user_id} ({link.gitlab_username})" for link in links)
            return self.show(
                Problem(
                    f"`{typed[:40]}` is not a linked user here; "
                    + (f"known users: {known}" if known else "nobody has linked an account yet")
                )
            )
        await self.act_as(user_id)
        self.show(Info(f"you are now acting as {self.actor.user_id}"))
        return True

    def show(self, reply: Reply) -> bool:
        self.remember(reply)
        if isinstance(reply, StatusReport):
            self.out.print(status_table(reply))
            return True
        return self.print_message(render(reply), problem=isinstance(reply, Problem))

    def print_message(self, message: SlackMessage, *, problem: bool = False) -> bool:
        renderable, choices = to_terminal(message, buttons=self.buttons)
        (self.err or self.out).print(renderable) if problem else self.out.print(renderable)
        if choices:
            self.choices = choices
        return not problem

    def remember(self, reply: Reply) -> None:
        project = getattr(reply, "project", None) or getattr(
            getattr(reply, "mirrors", None), "project", None
        )
        path = getattr(project, "path_with_namespace", None)
        if isinstance(path, str):
            ids = self.known_mirrors.setdefault(path, set())
            listed = getattr(getattr(reply, "mirrors", None), "push_mirrors", None)
            if isinstance(listed, list):
                ids.update(m.id for m in listed)

    # --- background output: alerts and syncs -------------------------------------------------

    def alert(self, message: SlackMessage) -> None:
        """An alert arriving in the background: printed without its buttons, which would
        change what a letter means while you type; `alerts` shows it with them."""
        self.recent_alerts.append(message)
        self.out.print(to_terminal(message, buttons=False)[0])
        if self.buttons:
            self.out.print("  `alerts` shows it again with its buttons", style="dim")

    def show_recent_alerts(self) -> bool:
        if not self.recent_alerts:
            self.out.print("No alerts since the console started.")
            return True
        # One message, so that each button has its own letter, under its own alert.
        blocks = [block for message in self.recent_alerts for block in message.blocks]
        return self.print_message(SlackMessage("recent alerts", blocks))

    async def follow(self, reply: SyncStarted, *, give_up_after: float = 60.0) -> bool:
        """Follow the sync until GitLab settles it, printing each move. Interactive: in the
        background, the prompt comes back at once (True: the sync was requested). Otherwise
        True only if GitLab finished every sync (what `-c` exits 0 for)."""
        if not self.background:
            return await self._follow(reply, give_up_after)
        task = asyncio.create_task(self._follow(reply, give_up_after))
        self.followers.add(task)
        task.add_done_callback(self.followers.discard)
        return True

    async def _follow(self, reply: SyncStarted, give_up_after: float) -> bool:
        gitlab = await self.services.accounts.gitlab_for(self.actor.slack_user)
        ref = reply.project
        current = {m.id: m for m in reply.mirrors}
        settled: set[int] = set()

        async def follow_one(requested: Any) -> None:
            shown = (requested.update_status, False)  # what the reply already said
            async for progress in follow_push_mirror(
                gitlab,
                ref,
                requested.id,
                interval=0.5,
                give_up_after=give_up_after,
                requested=requested,
            ):
                current[requested.id] = progress.mirror
                if progress.settled:
                    settled.add(requested.id)
                if (progress.mirror.update_status, progress.settled) != shown:
                    self._print_progress(reply, progress)

        try:
            await asyncio.gather(*(follow_one(m) for m in reply.mirrors))
        except (GitLabError, DomainError) as exc:  # GitLab went away mid-sync: say so
            self.show(Problem(f"stopped following the sync: {exc.user_message}"))
            return False
        result = replace(
            reply, mirrors=[current[m.id] for m in reply.mirrors], settled=frozenset(settled)
        )
        self.out.print(to_terminal(sync_progress(result, finished=True), buttons=False)[0])
        return result.succeeded

    async def drive_rotation(self, rotation_id: str) -> bool:
        """Run the rotation here, printing each step as Slack's message shows it; True
        unless it failed (waiting for *Key installed* is a step done, not a failure)."""
        gitlab = await self.services.accounts.gitlab_for(self.actor.slack_user)

        async def on_change(rotation: Rotation) -> None:
            renderable, choices = to_terminal(rotation_message(rotation))
            self.out.print(renderable)
            if choices:
                self.choices = choices

        ended = await self.services.rotations.drive(
            rotation_id, gitlab, on_change, interval=0.5, give_up_after=120.0
        )
        return ended.state in (State.DONE, State.AWAITING_KEY)

    async def rotate(self, project: ProjectRef, mirror_id: int) -> Reply:
        """The rotate form as prompts: username and new password (hidden) for a password
        mirror, nothing for an SSH one."""
        gitlab = await self.services.accounts.gitlab_for(self.actor.slack_user)
        _, mirror = await mirror_to_rotate(gitlab, project, mirror_id)
        credentials = None
        if mirror.auth_method != "ssh_public_key":
            self.out.print(
                f"Rotating push mirror {mirror.id} → {mirror.url}: a new mirror with every "
                "setting of it is synced first; the old one is deleted only if that works."
            )
            username = self._valid(
                lambda: self.prompter.text("Username"),
                lambda answer: NewCredentials(answer, "-").problems().get("username"),
            )
            password = self._valid(
                lambda: self.prompter.secret("New password or token (input hidden): "),
                lambda answer: NewCredentials("-", answer).problems().get("password"),
            )
            credentials = NewCredentials(username, password)
        return await request_rotation(
            gitlab, project, mirror_id, credentials, self.actor, self.services
        )

    def _print_progress(self, reply: SyncStarted, progress: SyncProgress) -> None:
        mirror = progress.mirror
        if not (progress.settled or mirror.is_in_progress):
            return  # still the previous update's result: nothing has moved yet
        self.out.print(
            mrkdwn(
                f"  :arrows_counterclockwise: {reply.project} · mirror "
                f"{mirror.id} · {status_label(mirror.update_status, mirror.enabled)}"
            )
        )

    # --- forms: the modals as prompts --------------------------------------------------------

    async def form(self, command: Command) -> Reply:
        if command.name == "login" and self.services.device_logins is not None:
            return await self.device_login()
        if command.name == "login":
            token = self.prompter.secret("GitLab personal access token (input hidden): ")
            link = await self.services.accounts.link(
                self.actor.slack_user,
                token,
                linked_by=self.actor.user_id,
                channel_id=self.actor.channel_id,
            )
            return Info(
                f"linked to GitLab user {link.gitlab_username} "
                f"({', '.join(link.scopes) or 'unknown scopes'})"
            )
        assert command.project is not None
        if command.name == "rotate":
            assert command.mirror_id is not None
            return await self.rotate(command.project, command.mirror_id)
        gitlab = await self.services.accounts.gitlab_for(self.actor.slack_user)
        if command.name == "pull-config":
            attributes = self.ask_pull_config(await pull_mirror_or_none(gitlab, command.project))
            operation = Operation.PULL_CONFIG
        elif command.mirror_id is None:
            attributes, operation = self.ask_push_mirror(None), Operation.ADD
        else:
            current = await gitlab.get_push_mirror(command.project, command.mirror_id)
            self.out.print(
                f"Editing push mirror {current.id} → {current.url} "
                "(GitLab cannot change a mirror's URL)"
            )
            attributes, operation = self.ask_push_mirror(current), Operation.EDIT
        return await request_change(
            gitlab,
            operation,
            command.project,
            command.mirror_id,
            attributes,
            self.actor,
            self.services,
        )

    async def device_login(self, *, poll_every: float = 0.5) -> Reply:
        """Show the code and the link, then wait (as `gh auth login` does) until GitLab
        says approved, denied or expired; the Slack server's worker does the same."""
        logins = self.services.device_logins
        assert logins is not None
        started = await logins.start(
            self.actor.slack_user, channel_id=self.actor.channel_id, response_url=None
        )
        renderable, _ = to_terminal(render(DeviceLoginStarted(started)))
        self.out.print(renderable)  # its buttons are Slack's: no choices here
        self.out.print(f"Open {started.verification_uri_complete}", style="dim")
        if self.on_device_login is not None:
            self.on_device_login(started.user_code, self.actor.user_id)
        while True:
            await logins.poll_due()
            await logins.expire_overdue()
            for finished in await logins.unnotified():
                if finished.login_id == started.login_id and await logins.mark_notified(
                    finished.login_id
                ):
                    self.choices = []
                    return DeviceLoginFinished(finished)
            await asyncio.sleep(poll_every)

    def ask_push_mirror(self, current: Any) -> dict[str, Any]:
        """The add/edit form's answers, as the modal gives them: the branch choice as two
        keys (an emptied filter is ""), turned into GitLab's by the domain. A bad answer is
        asked again; the other answers are kept."""
        attributes: dict[str, Any] = {}
        if current is None:
            attributes["url"] = self._valid(
                lambda: self.prompter.text("Target repository URL"), mirror_url_problem
            )
        attributes["auth_method"] = self._valid(
            lambda: self.prompter.text(
                "Authentication: password or ssh_public_key",
                current.auth_method if current else "password",
            ),
            lambda auth: (
                None
                if auth in ("password", "ssh_public_key")
                else "authentication is `password` or `ssh_public_key`"
            ),
        )
        attributes["enabled"] = self.prompter.yes("Enabled", current.enabled if current else True)
        attributes["keep_divergent_refs"] = self.prompter.yes(
            "Keep divergent refs", bool(current and current.keep_divergent_refs)
        )
        protected = self.prompter.yes(
            "Only protected branches", bool(current and current.only_protected_branches)
        )
        existing = current.mirror_branch_regex if current else None
        label = (
            f"Branch filter (regular expression; Enter keeps it, {CLEAR} for none)"
            if existing
            else "Branch filter (regular expression, empty for none)"
        )
        regex = self._valid(
            lambda: self.prompter.text(label, existing),
            lambda answer: branch_regex_problem(_cleared(answer), protected),
        )
        attributes["only_protected_branches"] = protected
        attributes["mirror_branch_regex"] = _cleared(regex)
        return attributes

    def ask_pull_config(self, current: PullMirror | None) -> dict[str, Any]:
        attributes: dict[str, Any] = {}
        url = self._valid(
            lambda: self.prompter.text(
                "Source repository URL" + (" (empty keeps it)" if current else "")
            ),
            lambda answer: (
                mirror_url_problem(answer)
                if answer or current is None
                else None  # empty keeps the current URL
            ),
        )
        if url:
            attributes["url"] = url
        if user := self.prompter.text("Username (empty for none)"):
            attributes["auth_user"] = user
        if password := self.prompter.secret("Password or token (input hidden, empty for none): "):
            attributes["auth_password"] = password
        attributes["enabled"] = self.prompter.yes("Enabled", current.enabled if current else True)
        attributes["mirror_trigger_builds"] = self.prompter.yes(
            "Trigger pipelines", bool(current and current.mirror_trigger_builds)
        )
        attributes["only_mirror_protected_branches"] = self.prompter.yes(
            "Only protected branches", bool(current and current.only_mirror_protected_branches)
        )
        attributes["mirror_overwrites_diverged_branches"] = self.prompter.yes(
            "Overwrite diverged branches",
            bool(current and current.mirror_overwrites_diverged_branches),
        )
        return attributes

    def _valid(self, ask: Callable[[], str], problem_of: Callable[[str], str | None]) -> str:
        """Ask until the answer is valid, saying what is wrong; a few tries, not forever."""
        for _ in range(ATTEMPTS - 1):
            value = ask()
            if (problem := problem_of(value)) is None:
                return value
            self.out.print(f"  {problem}; try again")
        value = ask()
        if problem := problem_of(value):
            raise UsageError(problem)
        return value


def _cleared(answer: str) -> str:
    return "" if answer == CLEAR else answer


async def print_alerts_forever(
    session: ConsoleSession, every: float = 2.0, *, first_after: float = 0.0
) -> None:
    """Demo only: scan the watched projects and print the alerts for the console channel
    (the first scan after `first_after` seconds, so the prompt is there to keep)."""
    services = session.services
    gitlab = services.service_gitlab()
    assert gitlab is not None
    remind_after = timedelta(seconds=services.settings.mirrorbot_remind_after)
    await asyncio.sleep(first_after)
    while True:
        with contextlib.suppress(Exception):
            await monitor.scan(services.sessions, gitlab, concurrency=4, remind_after=remind_after)
            for message in await outbox.claim_due(services.sessions, services.replica_id, limit=20):
                session.alert(render_outbox(message.kind, message.payload))
                await outbox.mark_sent(services.sessions, message, None)
        await asyncio.sleep(every)
