"""GitLab's checks on mirror attributes, as its code does them (gitlab-api.md §1.3-1.4)."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import unquote, urlsplit

MIRROR_SCHEMES = ("http", "https", "ssh", "git")
_SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")


def url_blocked_reason(url: str, *, allow_local: bool = False) -> str | None:
    """The `is blocked: …` reason GitLab gives for a mirror URL, or None if it is allowed."""
    if "\n" in url or "\r" in url:
        return "URI is invalid"
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:
        return "URI is invalid"
    if parts.scheme not in MIRROR_SCHEMES:
        return "Only allowed schemes are http, https, ssh, git"
    if not hostname:
        return "Hostname or IP address invalid"
    if len(hostname) > 1024:
        return "Host is too long (maximum is 1024 characters)"
    if parts.username is not None and not re.match(r"^[A-Za-z0-9]", unquote(parts.username)):
        return "Username needs to start with an alphanumeric character"
    if allow_local:
        return None
    if hostname == "localhost" or hostname.endswith(".localhost"):
        return "Requests to localhost are not allowed"
    try:
        address = ipaddress.ip_address(hostname)
    except ValueError:
        return None  # a hostname that does not resolve is accepted on save
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address.is_unspecified:
        return "Requests to localhost are not allowed"
    if address.is_loopback:
        return "Requests to loopback addresses are not allowed"
    if address.is_link_local:
        return "Requests to the link local network are not allowed"
    if isinstance(address, ipaddress.IPv4Address) and address in _SHARED_ADDRESS_SPACE:
        return "Requests to the shared address space are not allowed"
    if str(address) == "255.255.255.255":
        return "Requests to the limited broadcast address are not allowed"
    if address.is_private:
        return "Requests to the local network are not allowed"
    return None


def safe_url(url: str) -> str | None:
    """GitLab's `safe_url`: userinfo masked, except the username `git`."""
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError:
        return None
    if "@" not in parts.netloc:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, has_password, _ = userinfo.partition(":")
    shown_user = user if user == "git" else "*****"
    masked = f"{shown_user}:*****" if has_password else shown_user
    return parts._replace(netloc=f"{masked}@{hostport}").geturl()


def regex_error(pattern: str) -> str | None:
    """RE2 is approximated by Python's `re`: the shapes of error match GitLab's."""
    if len(pattern) > 255:
        return "is too long (maximum is 255 characters)"
    try:
        re.compile(pattern)
    except re.error as exc:
        return f"not valid RE2 syntax: {exc}"
    return None


def coerce_bool(value: object) -> bool | None:
    """Grape's Boolean coercion: JSON booleans and the strings true/false/1/0."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "yes"):
        return True
    if isinstance(value, str) and value.lower() in ("false", "0", "no"):
        return False
    if isinstance(value, int):
        return bool(value)
    return None
