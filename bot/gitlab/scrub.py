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
# GitLab tokens (personal, project, group, deploy, runner, OAuth) by their documented
# prefixes, and GitHub's (mirrors often push there).
_TOKEN = re.compile(
    r"\b(?:(?:glpat|gloas|gldt|glrt|glcbt|glptt|glft|glimt|glagent|glsoat|glffct)-"
    r"|gh[pousr]_|github_pat_)[A-Za-z0-9_\-.]{8,}"
)
# A credential in a query string: `?access_token=…`, `&private_token=…`, `?password=…`.
_SECRET_PARAMETER = re.compile(
    r"(?P<name>[?&;](?:[A-Za-z_\-]*(?:token|secret|password|passwd|key|auth|sig|signature)"
    r"[A-Za-z_\-]*))=(?P<value>[^&;#\s`'\"<>]+)",
    re.IGNORECASE,
)


def scrub_url(url: str | None) -> str | None:
    """Replace a URL's userinfo (`https://u:p@h/x` -> `https://*****:*****@h/x`) and every
    value of its query string and fragment: GitLab masks only the userinfo, and a query
    may carry a token too."""
    if url is None:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return scrub_text(url)
    query = "&".join(
        f"{pair.partition('=')[0]}={MASK}" if "=" in pair else MASK
        for pair in parts.query.split("&")
        if pair
    )
    parts = parts._replace(query=query, fragment=MASK if parts.fragment else "")
    if "@" in parts.netloc:
        userinfo, _, hostport = parts.netloc.rpartition("@")
        masked = f"{MASK}:{MASK}" if ":" in userinfo else MASK
        parts = parts._replace(netloc=f"{masked}@{hostport}")
    return scrub_text(urlunsplit(parts))


def scrub_text(text: str | None) -> str | None:
    """Mask URL userinfo, credentials in query strings and known tokens anywhere in free
    text (errors, log lines)."""
    if text is None:
        return None

    def _mask(match: re.Match[str]) -> str:
        masked = f"{MASK}:{MASK}" if ":" in match.group("userinfo") else MASK
        return f"{match.group('scheme')}{masked}@"

    text = _USERINFO_IN_TEXT.sub(_mask, text)
    text = _SECRET_PARAMETER.sub(lambda m: f"{m.group('name')}={MASK}", text)
    return _TOKEN.sub(MASK, text)
