"""Rows the domain tests put straight into the database, where the domain's own way in
(`Subscriptions.watch`) would first ask GitLab."""

from bot.store.models import Subscription


def subscription(project_id: int, channel_id: str, path: str = "group/app") -> Subscription:
    return Subscription(
        slack_team_id="T",
        channel_id=channel_id,
        project_id=project_id,
        project_path=path,
        created_by="U",
    )
