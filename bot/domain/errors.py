"""Domain errors. Like GitLab's, each carries the line a person can act on."""

from __future__ import annotations


class DomainError(Exception):
    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


class NotLinked(DomainError):
    def __init__(self) -> None:
        super().__init__("link your GitLab account with `/mirror login` first")


class LinkBroken(DomainError):
    """GitLab refused the OAuth link's refresh token (used, revoked or the application
    removed): nothing but a new login mends it."""

    def __init__(self) -> None:
        super().__init__(
            "the GitLab login of this account has ended (GitLab no longer renews it) — "
            "nothing was done; its owner can run `/mirror login` to link it again"
        )


class TokenNotUsable(DomainError):
    """A token that GitLab accepts but that cannot run mirror operations."""


class NotAllowed(DomainError):
    """The caller may not do this (e.g. an admin-only action)."""
