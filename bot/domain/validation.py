"""Checks on mirror attributes made before GitLab is called, so a form can show them."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

MIRROR_SCHEMES = ("http", "https", "ssh", "git")


def mirror_url_problem(url: str) -> str | None:
    url = url.strip()
    if not url:
        return "enter the URL of the repository to mirror to"
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return "that URL cannot be parsed"
    if parts.scheme not in MIRROR_SCHEMES:
        return "GitLab accepts only http://, https://, ssh:// and git:// URLs"
    if not host:
        return "the URL needs a host name"
    return None


def branch_regex_problem(pattern: str | None, only_protected: bool) -> str | None:
    if not pattern:
        return None
    if only_protected:
        return "choose either a branch filter or protected branches only, not both"
    if len(pattern) > 255:
        return "the branch filter can be at most 255 characters"
    try:
        re.compile(pattern)
    except re.error as exc:
        return f"not a valid regular expression: {exc}"
    return None
