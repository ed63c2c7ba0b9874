"""Block Kit → terminal text (pure). The console shows exactly what Slack would show,
because it renders the very messages the Slack renderers build."""

from __future__ import annotations

import html
import re
import string
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from bot.commands.results import StatusReport
from bot.domain.inventory import Inventory
from bot.domain.subscriptions import PULL_KEY
from bot.slack.blocks.mirrors import likely_cause
from bot.slack.blocks.replies import status_report
from bot.slack.blocks.text import SlackMessage, slack_ago, status_label

# Emoji shortcodes the renderers use, as a symbol and a colour.
EMOJI = {
    ":red_circle:": ("●", "red"),
    ":large_green_circle:": ("●", "green"),
    ":large_orange_circle:": ("●", "yellow"),
    ":white_circle:": ("○", "white"),
    ":black_circle:": ("○", "bright_black"),
    ":hourglass_flowing_sand:": ("⧗", "cyan"),
    ":hourglass:": ("⧗", "bright_black"),
    ":warning:": ("!", "yellow"),
    ":white_check_mark:": ("✓", "green"),
    ":x:": ("✗", "red"),
    ":rotating_light:": ("‼", "bold red"),
    ":raised_hand:": ("✋", "yellow"),
    ":no_entry:": ("⛔", "red"),
    ":heavy_minus_sign:": ("–", "white"),
    ":arrows_counterclockwise:": ("↻", "cyan"),
    ":alarm_clock:": ("⏰", "yellow"),
    ":mute:": ("🔇", "white"),
    ":link:": ("🔗", "white"),
    ":wastebasket:": ("🗑", "white"),
}
_DATE = re.compile(r"<!date\^(?P<ts>\d+)\^(?P<format>[^|>]*)\|(?P<fallback>[^>]*)>")
_LINK = re.compile(r"<(?P<target>[^<>|]+)(?:\|(?P<label>[^<>]*))?>")
_STYLED = re.compile(r"(:[a-z0-9_+-]+:|\*[^*\n]+\*|`[^`\n]+`)")


@dataclass(frozen=True)
class Choice:
    """A button, as a lettered choice: `key` is what the person types."""

    key: str
    label: str
    action_id: str
    value: str


def choice_key(index: int) -> str:
    """a … z, then aa, ab …: letters never read as a mirror id, a number or a command."""
    letters = string.ascii_lowercase
    if index < len(letters):
        return letters[index]
    first, second = divmod(index - len(letters), len(letters))
    return letters[first % len(letters)] + letters[second]


def to_terminal(
    message: SlackMessage,
    now: datetime | None = None,
    *,
    buttons: bool = True,
) -> tuple[RenderableType, list[Choice]]:
    """The message as text, and its buttons as choices (printed only with `buttons`)."""
    now = now or datetime.now(UTC)
    parts: list[RenderableType] = []
    choices: list[Choice] = []
    for block in message.blocks:
        kind = block.get("type")
        if kind == "header":
            parts.append(Text(block["text"]["text"], style="bold underline"))
        elif kind == "section":
            if "text" in block:
                parts.append(mrkdwn(block["text"]["text"], now))
            for field in block.get("fields", []):
                parts.append(mrkdwn("  " + field["text"].replace("\n", ": ", 1), now))
        elif kind == "context":
            line = "  ".join(plain(e.get("text", ""), now) for e in block.get("elements", []))
            parts.append(Text(line, style="dim"))
        elif kind == "actions":
            row = Text("  ")
            for element in block.get("elements", []):
                if element.get("type") != "button":
                    continue
                choice = Choice(
                    choice_key(len(choices)),
                    element["text"]["text"],
                    element["action_id"],
                    element["value"],
                )
                choices.append(choice)
                row.append(f"[{choice.key}] ", style="bold cyan")
                row.append(f"{choice.label}   ", style=_button_style(element))
            if buttons and len(row) > 2:
                parts.append(row)
        elif kind == "input":
            continue
    if not parts:
        parts.append(Text(plain(message.text, now)))
    return Group(*parts), choices


def _button_style(element: dict[str, Any]) -> str:
    return {"primary": "green", "danger": "red"}.get(element.get("style", ""), "")


def plain(text: str, now: datetime | None = None) -> str:
    """mrkdwn without markup: dates as local times, links and mentions as text."""
    now = now or datetime.now(UTC)
    text = _DATE.sub(lambda m: _date(int(m["ts"]), m["format"], now), text)
    text = _LINK.sub(_link, text)
    return html.unescape(text)


def mrkdwn(text: str, now: datetime | None = None) -> Text:
    result = Text()
    for piece in _STYLED.split(plain(text, now).replace("```", "")):
        if piece in EMOJI:
            symbol, style = EMOJI[piece]
            result.append(symbol, style=style)
        elif len(piece) > 2 and piece.startswith("*") and piece.endswith("*"):
            result.append(piece[1:-1], style="bold")
        elif len(piece) > 2 and piece.startswith("`") and piece.endswith("`"):
            result.append(piece[1:-1], style="magenta")
        else:
            result.append(piece)
    return result


def _link(match: re.Match[str]) -> str:
    target, label = match["target"], match["label"]
    if target.startswith("@"):
        return target
    if target.startswith("#"):
        return f"#{label or target[1:]}"
    return f"{label} ({target})" if label and label != target else target


def _date(timestamp: int, format_: str, now: datetime) -> str:
    moment = datetime.fromtimestamp(timestamp, UTC)
    if "{ago}" in format_:
        return _ago(now - moment)
    local = moment.astimezone()  # the terminal's own zone, named, as Slack shows the reader's
    return local.strftime("%H:%M %Z" if format_ == "{time}" else "%Y-%m-%d %H:%M %Z")


def _ago(delta: Any) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 0:
        return "in the future"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "just now"


INVENTORY_COLUMNS = [
    ("project", "project_path"),
    ("dir", "direction"),
    ("mirror", "mirror"),
    ("target", "target"),
    ("status", "status"),
    ("enabled", "enabled"),
    ("auth", "auth_method"),
    ("last success", "last_success"),
    ("likely cause", "cause"),
]


def inventory_table(inventory: Inventory) -> str:
    """Every mirror of the inventory as an aligned plain-text table (the summary is above)."""
    rows = [
        {
            "project_path": row.project_path,
            "direction": row.direction,
            "mirror": row.mirror,
            "target": f"{row.host}{row.path}",
            "status": "failing" if row.failing else row.status,
            "enabled": "yes" if row.enabled else "no",
            "auth_method": row.auth_method or "-",
            "last_success": row.last_success.strftime("%Y-%m-%d %H:%M")
            if row.last_success
            else "never",
            "cause": row.cause or "-",
        }
        for row in inventory.rows
    ]
    widths = [max([len(title), *(len(r[key]) for r in rows)]) for title, key in INVENTORY_COLUMNS]
    lines = [
        "  ".join(title.ljust(w) for (title, _), w in zip(INVENTORY_COLUMNS, widths, strict=True))
    ]
    lines += [
        "  ".join(r[key].ljust(w) for (_, key), w in zip(INVENTORY_COLUMNS, widths, strict=True))
        for r in rows
    ]
    return "\n".join(line.rstrip() for line in lines)


def status_table(reply: StatusReport, now: datetime | None = None) -> RenderableType:
    """`status` as aligned columns, failing first: a terminal has a fixed-width font,
    which Slack's text has not. The header and the unreadable projects are Slack's own."""
    now = now or datetime.now(UTC)
    message = status_report(reply)
    head = [b for b in message.blocks if b.get("type") == "section"][: 1 + bool(reply.unchecked)]
    if not reply.observations:
        return to_terminal(message, now)[0]
    table = Table(box=None, pad_edge=False, header_style="bold", show_edge=False)
    for column in ("status", "project", "mirror", "last success"):
        table.add_column(column, no_wrap=True)
    # The long ones wrap in a narrow terminal; the short ones stay readable.
    table.add_column("likely cause")
    table.add_column("target", overflow="fold")
    rows = sorted(
        reply.observations, key=lambda o: (not o.is_failing, o.project_path, o.mirror_key)
    )
    for o in rows:
        cause = likely_cause(o.last_error, with_fix=False) if o.is_failing else None
        table.add_row(
            mrkdwn(status_label(o.update_status, o.enabled), now),
            o.project_path,
            "pull" if o.mirror_key == PULL_KEY else str(o.mirror_id),
            plain(slack_ago(o.last_successful_update_at), now),
            Text(cause or ("failing" if o.is_failing else ""), style="red" if cause else ""),
            plain(o.url or "?", now),
        )
    return Group(to_terminal(SlackMessage(message.text, head), now)[0], table)
