"""Credential scrubbing for every URL and error text the bot prints, logs or stores.

GitLab already masks mirror URLs, but older versions, other endpoints and free-text
errors (`last_error`) may not; the bot scrubs again whatever it received.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

MASK = "*****"

# scheme://userinfo@ : userinfo is everything up to the last "@" before the host part.
_USERINFO_IN_TEXT = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/?#\s@]*(?:@[^/?#\s@]*)*)@"
)
# GitLab tokens (personal, project, group, deploy, runner, OAuth) by their documented prefixes.
_GITLAB_TOKEN = re.compile(
    r"\b(?:glpat|gloas|gldt|glrt|glcbt|glptt|glft|glimt|glagent|glsoat|glffct)-[A-Za-z0-9_\-.]{8,}"
)


def scrub_url(url: str | None) -> str | None:
    """Replace a URL's userinfo: `https://u:p@h/x` -> `https://*****:*****@h/x`."""
    if url is None:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return scrub_text(url)
    if "@" not in parts.netloc:
        return scrub_text(url)
    userinfo, _, hostport = parts.netloc.rpartition("@")
    masked = f"{MASK}:{MASK}" if ":" in userinfo else MASK
    return scrub_text(urlunsplit(parts._replace(netloc=f"{masked}@{hostport}")))


def scrub_text(text: str | None) -> str | None:
    """Mask URL userinfo and GitLab tokens anywhere in free text (errors, log lines)."""
    if text is None:
        return None

    def _mask(match: re.Match[str]) -> str:
        masked = f"{MASK}:{MASK}" if ":" in match.group("userinfo") else MASK
        return f"{match.group('scheme')}{masked}@"

    text = _USERINFO_IN_TEXT.sub(_mask, text)
    return _GITLAB_TOKEN.sub(MASK, text)
