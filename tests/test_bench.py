"""Each benchmark runs at a tiny size and its figures are checked: what it counts, not
how fast (machines are shared and noisy; timing targets are in bench/README.md). The
only timings compared are ones an order of magnitude apart by design."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

# Benches start processes of their own: one at a time with the suite's other process tests
# (pyproject.toml, addopts), as their figures assume.
pytestmark = pytest.mark.xdist_group("processes")

BENCH = Path(__file__).resolve().parent.parent / "bench"


def run_tiny(script: str, tmp_path: Path) -> dict[str, Any]:
    return run_tiny_with(script, tmp_path)


def run_tiny_with(script: str, tmp_path: Path, *flags: str) -> dict[str, Any]:
    figures = tmp_path / "figures.json"
    result = subprocess.run(
        [sys.executable, str(BENCH / script), "--tiny", *flags, "--figures", str(figures)],
        cwd=BENCH,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return json.loads(figures.read_text())


def test_ack_answers_every_request_before_gitlab_would_and_replies_to_each(tmp_path: Path):
    figures = run_tiny("ack.py", tmp_path)
    assert figures["replies"] == figures["requests"] == 30
    assert figures["acks_over_3s"] == 0
    # An ack that waited for GitLab would take at least one GitLab read (200 ms here),
    # as the baseline, which does wait, shows; the bot's median ack is under that.
    assert figures["ack_ms"]["p50"] < figures["gitlab_latency_ms"]
    assert figures["baseline_ms"]["p50"] >= figures["gitlab_latency_ms"]


def test_fanout_reads_every_project_and_beats_the_sequential_loop(tmp_path: Path):
    figures = run_tiny("fanout.py", tmp_path)
    # Push mirrors and pull mirror of each project, like the baseline's loop.
    assert figures["requests"] == figures["baseline_requests"] == 2 * figures["projects"]
    # 20 concurrent reads against 40 sequential ones of 50 ms each.
    assert figures["seconds"] * 2 < figures["baseline_seconds"]


def test_webhooks_processes_every_acknowledged_event_exactly_once_across_a_kill(
    tmp_path: Path,
):
    figures = run_tiny("webhooks.py", tmp_path)
    crash = figures["crash"]
    assert crash["acknowledged"] > 0 and crash["stored"] >= crash["acknowledged"]
    assert crash["lost"] == crash["not_processed"] == crash["processed_twice"] == 0
    [intake] = figures["rates"].values()
    assert intake["errors"] == 0 and intake["accepted_per_s"] > 0


def test_monitor_keeps_to_its_budget_uses_it_and_alerts(tmp_path: Path):
    figures = run_tiny("monitor_scale.py", tmp_path)
    assert 0 < figures["worst"] <= figures["budget"]
    assert figures["used"] >= 0.9
    assert figures["detect"] <= figures["scan"] + 10


def test_retention_prunes_what_is_past_retention_and_keeps_the_rest(tmp_path: Path):
    figures = run_tiny("retention.py", tmp_path)
    sqlite = figures["sqlite"]
    for table, before in sqlite["rows_before"].items():
        assert 0 < sqlite["rows_after"][table] < before, table
    assert sqlite["pruned"] == sum(sqlite["rows_before"].values()) - sum(
        sqlite["rows_after"].values()
    )


def test_fleet_discovery_lists_a_group_in_pages_and_the_scan_reads_every_project(tmp_path: Path):
    figures = run_tiny("fleet.py", tmp_path)
    assert figures["discovered"] == figures["discovery_added"] == figures["projects"] == 250
    assert figures["discovery_requests"] == 3  # 100 a page
    assert figures["scan_checked"] == 250
    assert figures["scan_requests"] >= 2 * figures["projects"]  # push and pull of each


def test_answers_take_one_round_trip_where_the_base_commit_took_two_or_three(tmp_path: Path):
    figures = run_tiny("answers.py", tmp_path)
    ways = [k for k in figures["ours"] if k != "burst"]
    assert sorted(ways) == ["0.1 alone", "0.1 together"]  # each alone, and the five at once
    for way in ways:
        ours, base = figures["ours"][way], figures["base"][way]
        for command in figures["commands"]:
            assert ours[command]["round_trips"] == 1, command
            assert base[command]["round_trips"] >= 2, command
        # list: push mirrors and pull mirror; key: the key and its mirror; sync: POST, a read.
        assert {c: ours[c]["requests"] for c in figures["commands"]} == {
            "list": 2,
            "show": 1,
            "key": 2,
            "pull": 1,
            "sync": 2,
        }
    burst = figures["ours"]["burst"]
    assert burst["replies"] == 20
    assert burst["gitlab_requests"] < figures["base"]["burst"]["gitlab_requests"]


def test_monitor_reads_only_the_mirrors_projects_have_after_its_first_scan(tmp_path: Path):
    figures = run_tiny_with("monitor_scale.py", tmp_path, "--presence")
    projects, with_pull = figures["projects"], figures["with_pull"]
    assert figures["before_requests"] == 2 * projects
    # By REST: each project's push mirrors, the pull mirrors that exist, a tenth re-checked.
    assert figures["rest_max_requests"] <= projects + with_pull + projects // 10
    assert figures["rest_requests"] >= projects + with_pull
    # By GraphQL: the push mirrors, one GraphQL request (100 projects a page), and pull
    # mirrors by REST only at their re-checks.
    assert figures["after_graphql"] == 1 and figures["after_push"] == projects
    assert figures["after_max_requests"] <= projects + 1 + with_pull
    assert figures["after_requests"] < figures["rest_requests"]
