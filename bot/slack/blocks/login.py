"""The device login's message (pure): the code and the link to approve it at GitLab, then
what became of it. Shown to the person only; it replaces itself as the login goes on."""

from __future__ import annotations

from bot.commands.actions import LoginActions
from bot.commands.results import DeviceLoginFinished, DeviceLoginStarted
from bot.domain import device_login
from bot.domain.accounts import AccountLink
from bot.slack.blocks.text import (
    SlackMessage,
    actions,
    button,
    context,
    escape,
    section,
    slack_date,
)

_PASTE_INSTEAD = "Use a personal access token instead"


def login_started(reply: DeviceLoginStarted) -> SlackMessage:
    login = reply.login
    link_button = button("Open GitLab to approve", LoginActions.OPEN_GITLAB, "open", "primary")
    link_button["url"] = login.verification_uri_complete
    return SlackMessage(
        f"Link your GitLab account: approve the code {login.user_code} at GitLab",
        [
            section(
                "*Link your GitLab account.* Open GitLab, check that it shows the code "
                f"*`{escape(login.user_code)}`*, and choose *Authorize*."
            ),
            actions(
                "login",
                link_button,
                button(_PASTE_INSTEAD, LoginActions.USE_TOKEN, "token"),
            ),
            context(
                f"The code expires {slack_date(login.expires_at, '{time}')}. "
                "Only you can see this message; it changes once you have answered at GitLab."
            ),
        ],
    )


def login_finished(reply: DeviceLoginFinished) -> SlackMessage:
    login = reply.login
    if login.state == device_login.LINKED and login.link is not None:
        return linked(login.link)
    start_again = actions(
        "login",
        button("Start again", LoginActions.START_AGAIN, "again", "primary"),
        button(_PASTE_INSTEAD, LoginActions.USE_TOKEN, "token"),
    )
    why = {
        device_login.DENIED: ":no_entry: You denied the login at GitLab: nothing was linked.",
        device_login.EXPIRED: ":alarm_clock: The code expired before it was approved: "
        "nothing was linked.",
    }.get(login.state, ":warning: GitLab did not complete the login: nothing was linked.")
    return SlackMessage(why, [section(why), start_again])


def linked(link: AccountLink) -> SlackMessage:
    scopes = ", ".join(link.scopes) or "unknown"
    until = (
        f"; the access token lasts until {slack_date(link.access_expires_at)} and is renewed "
        "automatically"
        if link.access_expires_at
        else ""
    )
    text = f"linked as @{link.gitlab_username}"
    return SlackMessage(
        text,
        [
            section(
                f":white_check_mark: Linked as *@{escape(link.gitlab_username)}* through "
                f"GitLab OAuth (scopes: {scopes}{until})."
            ),
            context("`/mirror whoami` shows the link; `/mirror logout` revokes it at GitLab."),
        ],
    )
