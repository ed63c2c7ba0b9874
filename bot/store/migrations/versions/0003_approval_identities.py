"""approvals: GitLab identities for four eyes, what the change sets, an execution lease

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("approval_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("requester_gitlab_user_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("approver_gitlab_user_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("changes", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("needs_approval_of", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("running_until", sa.DateTime(timezone=True), nullable=True))
    # Requests made before this revision: their requester's GitLab user is the one linked now
    # (a request whose requester is no longer linked cannot run anyway).
    op.execute(
        "UPDATE approval_requests SET requester_gitlab_user_id = ("
        " SELECT linked_accounts.gitlab_user_id FROM linked_accounts"
        " WHERE linked_accounts.slack_team_id = approval_requests.slack_team_id"
        " AND linked_accounts.slack_user_id = approval_requests.requester_id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("approval_requests", schema=None) as batch_op:
        batch_op.drop_column("running_until")
        batch_op.drop_column("needs_approval_of")
        batch_op.drop_column("changes")
        batch_op.drop_column("approver_gitlab_user_id")
        batch_op.drop_column("requester_gitlab_user_id")
