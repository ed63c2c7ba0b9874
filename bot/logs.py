"""Logging: one line per handled request and per GitLab call, never a secret.

`SecretFilter` scrubs every record (message and arguments): URL userinfo, GitLab tokens,
Slack tokens, and the exact values of the configured secrets."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable

from bot.gitlab.scrub import MASK, scrub_text

_SLACK_TOKEN = re.compile(r"\bx(?:ox[abposr]|app)-[A-Za-z0-9-]{6,}")
_AUTH_HEADER = re.compile(
    r"(?i)(private-token|authorization|x-gitlab-token)(['\"]?\s*[:=]\s*"
    r"['\"]?)(bearer\s+)?[^\s'\",}]+"
)


class SecretFilter(logging.Filter):
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        text = _SLACK_TOKEN.sub(MASK, text)
        text = _AUTH_HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
        return scrub_text(text) or ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.scrub(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(
    secrets: Iterable[str], *, json_lines: bool = False, level: int = logging.INFO
) -> SecretFilter:
    """Install one handler on the root logger whose filter scrubs every record."""
    secret_filter = SecretFilter(secrets)
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(secret_filter)
    handler.setFormatter(
        JsonFormatter()
        if json_lines
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    return secret_filter
