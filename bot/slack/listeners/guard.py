"""The one error handler: whatever a listener raises after its ack becomes one line for the
person, never silence and never a stack trace in Slack."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from bot.commands.results import Problem
from bot.domain.errors import DomainError
from bot.gitlab.errors import GitLabError
from bot.slack.blocks.replies import problem

log = logging.getLogger(__name__)

UNEXPECTED = "something went wrong on Mirrorbot's side; the error is logged — try again"


def problem_of(exc: BaseException) -> Problem:
    if isinstance(exc, (GitLabError, DomainError)):
        return Problem(exc.user_message)
    log.exception("listener failed", exc_info=exc)
    return Problem(UNEXPECTED)


async def report_failure(exc: BaseException, tell: Callable[..., Awaitable[Any]]) -> None:
    """Tell the person what went wrong through `tell(**message_kwargs)`."""
    try:
        await tell(**problem(problem_of(exc)).as_kwargs())
    except Exception:
        log.exception("could not report a failure to the user")
