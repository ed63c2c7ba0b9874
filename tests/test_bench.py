"""Each benchmark runs at a tiny size, only to prove it still runs (figures: bench/README.md).
No timing is asserted here: machines are shared and noisy."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.mark.parametrize(
    "script", ["ack.py", "fanout.py", "webhooks.py", "monitor_scale.py", "retention.py"]
)
def test_benchmark_runs_at_a_tiny_size(script: str):
    result = subprocess.run(
        [sys.executable, str(BENCH / script), "--tiny"],
        cwd=BENCH,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "mirrorbot" in result.stdout and "baseline" in result.stdout
