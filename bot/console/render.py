"""Block Kit → terminal text (pure). The console shows exactly what Slack would show,
because it renders the very messages the Slack renderers build."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

from bot.domain.inventory import Inventory
from bot.slack.blocks.text import SlackMessage

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
    """A button, as a numbered choice."""

    number: int
    label: str
    action_id: str
    value: str


def to_terminal(
    message: SlackMessage,
    now: datetime | None = None,
) -> tuple[RenderableType, list[Choice]]:
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
                    len(choices) + 1,
                    element["text"]["text"],
                    element["action_id"],
                    element["value"],
                )
                choices.append(choice)
                row.append(f"[{choice.number}] ", style="bold cyan")
                row.append(f"{choice.label}   ", style=_button_style(element))
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
    local = moment.astimezone()
    return local.strftime("%H:%M") if format_ == "{time}" else local.strftime("%Y-%m-%d %H:%M")


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
