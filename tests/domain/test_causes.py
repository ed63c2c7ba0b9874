"""Likely causes from real-world mirror error texts (git, Gitaly, GitLab, GitHub)."""

import pytest

from bot.domain.causes import classify

CASES = [
    (
        "fatal: Authentication failed for 'https://*****:*****@github.com/acme/app.git/'",
        "authentication",
    ),
    (
        "remote: Invalid username or password.\nfatal: Authentication failed for "
        "'https://github.com/acme/app.git/'",
        "authentication",
    ),
    (
        "git@gitlab.example.com: Permission denied (publickey).\nfatal: Could not read from "
        "remote repository.",
        "authentication",
    ),
    (
        "remote: HTTP Basic: Access denied. The provided password or token is incorrect or your "
        "account has 2FA enabled",
        "authentication",
    ),
    (
        "fatal: could not read Username for 'https://bitbucket.org': terminal prompts disabled",
        "authentication",
    ),
    ("Host key verification failed.\nfatal: Could not read from remote repository.", "host_key"),
    (
        "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n@    WARNING: REMOTE HOST "
        "IDENTIFICATION HAS CHANGED!     @",
        "host_key",
    ),
    (
        "Some refs have diverged and have not been updated on the remote:\n\nrefs/heads/main",
        "diverged",
    ),
    (
        " ! [rejected]        main -> main (fetch first)\nerror: failed to push some refs",
        "diverged",
    ),
    (" ! [rejected]        main -> main (non-fast-forward)", "diverged"),
    (
        "remote: GitLab: You are not allowed to force push code to a protected branch on this "
        "project.\n ! [remote rejected] main -> main (pre-receive hook declined)",
        "protected",
    ),
    ("remote: error: GH006: Protected branch update failed for refs/heads/main.", "protected"),
    (
        "remote: Repository not found.\nfatal: repository 'https://github.com/acme/gone.git/' "
        "not found",
        "not_found",
    ),
    ("fatal: 'acme/app.git' does not appear to be a git repository", "not_found"),
    (
        "fatal: unable to access 'https://git.example.org/x.git/': Could not resolve host: "
        "git.example.org",
        "network",
    ),
    ("ssh: connect to host git.example.org port 22: Connection timed out", "network"),
    (
        "fatal: unable to access 'https://h/x.git/': Failed to connect to h port 443: "
        "Connection refused",
        "network",
    ),
    ("error: RPC failed; curl 56 GnuTLS recv error (-9)\nfatal: early EOF", "network"),
    (
        "The remote mirror URL is invalid: Requests to the local network are not allowed",
        "invalid_url",
    ),
    ("13:get remote references: exit status 128", "unknown"),
]


@pytest.mark.parametrize(("error", "cause"), CASES)
def test_real_error_texts_are_classified(error: str, cause: str):
    assert classify(error).key == cause


def test_no_error_is_unknown():
    assert classify(None).key == "unknown"
    assert classify("").key == "unknown"


def test_every_cause_has_a_fix_hint():
    for error, _ in CASES:
        cause = classify(error)
        assert cause.fix and cause.title
