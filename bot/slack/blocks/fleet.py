"""The fleet view: inventory summaries, digests and App Home counts (pure renderers)."""

from __future__ import annotations

from typing import Any

from bot.commands.results import InventoryReport
from bot.slack.blocks.text import SlackMessage, code, context, escape, section, shorten, slack_ago

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
