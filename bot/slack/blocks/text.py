"""Small text helpers for mrkdwn: escaping, shortening, dates each reader sees locally."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

SECTION_TEXT_LIMIT = 3000
MAX_ERROR_CHARS = 300
MAX_BLOCKS = 50

STATUS_ICONS = {
    "failed": ":red_circle:",
    "to_retry": ":large_orange_circle:",
    "started": ":hourglass_flowing_sand:",
    "scheduled": ":hourglass_flowing_sand:",
    "finished": ":large_green_circle:",
    "none": ":white_circle:",
    "canceled": ":white_circle:",
}


@dataclass(frozen=True)
class SlackMessage:
    """A message: fallback `text` (notifications, screen readers) and its blocks."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)

    def as_kwargs(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": self.blocks}


def escape(text: str) -> str:
    """Escape what mrkdwn treats as control characters in user-supplied text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# A code span the text already has (kept as it is), a URL, or a run of stars (a masked
# secret: `scrub_text` leaves `*****` in free text).
_CODE_URL_OR_MASK = re.compile(
    r"`(?P<code>[^`\n]*)`|[A-Za-z][A-Za-z0-9+.\-]*://[^\s`'\"<>()\[\]]+|\*{2,}"
)


def code(text: str) -> str:
    """`text` as an inline code span, which mrkdwn leaves alone: a URL's masked userinfo
    (`https://*****:*****@host`) outside one is read as bold and shown as `****:*`."""
    return "`" + escape(text).replace("`", "'") + "`"


def prose(text: str) -> str:
    """Free text from GitLab or a result (an error, a summary) for mrkdwn: escaped, with
    every URL and every mask in it a code span."""
    pieces, end = [], 0
    for match in _CODE_URL_OR_MASK.finditer(text):
        inner = match.group("code")
        pieces += [
            escape(text[end : match.start()]),
            code(match.group() if inner is None else inner),
        ]
        end = match.end()
    return "".join([*pieces, escape(text[end:])])


def shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slack_date(moment: datetime | None, style: str = "{date_short_pretty} {time}") -> str:
    """Slack formats the date in each reader's own time zone; the fallback is UTC."""
    if moment is None:
        return "never"
    fallback = moment.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{style}|{fallback}>"


def slack_ago(moment: datetime | None) -> str:
    return slack_date(moment, "{ago}")


# GitLab's values where a person would not say them so.
STATUS_WORDS = {"none": "never synced", "to_retry": "retrying"}


def status_label(update_status: str, enabled: bool) -> str:
    if not enabled:
        return ":black_circle: disabled"
    word = STATUS_WORDS.get(update_status, update_status)
    return f"{STATUS_ICONS.get(update_status, ':white_circle:')} {word}"


def section(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": shorten_block(text)}, **extra}


def shorten_block(text: str) -> str:
    return text if len(text) <= SECTION_TEXT_LIMIT else text[: SECTION_TEXT_LIMIT - 1] + "…"


def context(*texts: str) -> dict[str, Any]:
    return {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": shorten_block(t)} for t in texts[:10]],
    }


def button(
    text: str,
    action_id: str,
    value: str,
    style: str | None = None,
    confirm: dict[str, Any] | None = None,
) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": text[:75]},
        "action_id": action_id,
        "value": value[:2000],
    }
    if style:
        element["style"] = style
    if confirm:
        element["confirm"] = confirm
    return element


def confirm_dialog(title: str, text: str, confirm: str) -> dict[str, Any]:
    return {
        "title": {"type": "plain_text", "text": title[:100]},
        "text": {"type": "mrkdwn", "text": text[:300]},
        "confirm": {"type": "plain_text", "text": confirm[:30]},
        "deny": {"type": "plain_text", "text": "Cancel"},
    }


def actions(block_id: str | None, *elements: dict[str, Any]) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "actions", "elements": list(elements)[:25]}
    if block_id:
        block["block_id"] = block_id[:255]
    return block
