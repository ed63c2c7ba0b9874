"""Mirrorbot: a Slack chat-ops bot for GitLab repository mirrors."""

__version__ = "0.1.0"
