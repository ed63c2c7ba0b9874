"""The fleet view: inventory summaries, digests and App Home counts (pure renderers)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.commands.results import InventoryReport
from bot.slack.blocks.text import (
    MAX_BLOCKS,
    SlackMessage,
    code,
    context,
    escape,
    section,
    shorten,
    slack_ago,
    slack_date,
)

MAX_FAILING_SHOWN = 15


def inventory_filename(reply: InventoryReport) -> str:
    return f"mirrors-{reply.inventory.group_path.replace('/', '-')}.csv"


def inventory_summary(reply: InventoryReport) -> SlackMessage:
    inv = reply.inventory
    age = (
        f"from the monitor's observations, as of {slack_ago(inv.observed_at)}"
        if inv.observed_at
        else "read from GitLab just now"
    )
    header = (
        f"*Inventory of {escape(inv.group_path)}/*: {len(inv.rows)} mirrors in "
        f"{inv.projects} projects you maintain — *{inv.failing} failing*, "
        f"{inv.stale} stale (no success for over {inv.stale_after_days} days), "
        f"{inv.disabled} disabled"
    )
    blocks: list[dict[str, Any]] = [section(header), context(f"{age[0].upper()}{age[1:]}")]
    failing = [row for row in inv.rows if row.failing][:MAX_FAILING_SHOWN]
    if failing:
        lines = [
            f"• :red_circle: *{escape(row.project_path)}* {row.direction} {row.mirror} → "
            f"{code(row.host + row.path)}" + (f" — {escape(row.cause)}" if row.cause else "")
            for row in failing
        ]
        blocks.append(section("*Failing*\n" + "\n".join(lines)))
    if inv.unreadable:
        shown = "\n".join(f"• {escape(shorten(u, 200))}" for u in inv.unreadable[:10])
        blocks.append(section(f":warning: *Not read*\n{shown}"))
    if inv.rows:
        blocks.append(context(f"The full list is in `{inventory_filename(reply)}`."))
    return SlackMessage(
        f"Inventory of {inv.group_path}/: {len(inv.rows)} mirrors, {inv.failing} failing", blocks
    )


def _digest_section(title: str, entries: list[dict[str, Any]], total: int, line: Any) -> str:
    lines = [line(e) for e in entries]
    if total > len(entries):
        lines.append(f"…and {total - len(entries)} more")
    return f"*{title}*\n" + "\n".join(lines)


def _where(entry: dict[str, Any]) -> str:
    mirror = "pull mirror" if entry["mirror"] == "pull" else f"mirror {entry['mirror']}"
    host = f" → {entry['host']}" if entry.get("host") else ""
    return f"*{escape(entry['project_path'])}* {mirror}{host}"


def _date(value: str | None) -> str:
    return slack_date(datetime.fromisoformat(value)) if value else "never"


def digest(payload: dict[str, Any]) -> SlackMessage:
    """The daily digest: failing (and since when), recovered, stale, disabled."""
    failing, recovered = payload["failing_count"], payload["recovered_count"]
    stale, disabled = payload["stale_count"], payload["disabled_count"]
    header = (
        f":newspaper: *Mirror digest* for {payload['date']}: {payload['mirrors']} mirrors in "
        f"{payload['projects']} projects — *{failing} failing*, {recovered} recovered, "
        f"{stale} stale, {disabled} disabled"
    )
    blocks: list[dict[str, Any]] = [section(header)]
    if payload["all_well"]:
        blocks.append(section(":white_check_mark: All is well."))
    if failing:
        blocks.append(
            section(
                _digest_section(
                    ":red_circle: Failing",
                    payload["failing"],
                    failing,
                    lambda e: (
                        f"• {_where(e)} — since {_date(e['since'])}"
                        + (f" · {escape(e['cause'])}" if e.get("cause") else "")
                    ),
                )
            )
        )
    if recovered:
        blocks.append(
            section(
                _digest_section(
                    ":white_check_mark: Recovered in the last day",
                    payload["recovered"],
                    recovered,
                    lambda e: f"• {_where(e)}",
                )
            )
        )
    if stale:
        blocks.append(
            section(
                _digest_section(
                    f":hourglass: Stale (no success for over {payload['stale_after_days']} days)",
                    payload["stale"],
                    stale,
                    lambda e: f"• {_where(e)} — last success {_date(e['last_success'])}",
                )
            )
        )
    if disabled:
        blocks.append(
            section(
                _digest_section(
                    ":black_circle: Disabled",
                    payload["disabled"],
                    disabled,
                    lambda e: f"• {_where(e)}",
                )
            )
        )
    text = f"Mirror digest {payload['date']}: {failing} failing, {stale} stale, {disabled} disabled"
    return SlackMessage(text, blocks[:MAX_BLOCKS])
