"""fleet: failed-check counts and auth method per mirror, group subscriptions, daily digests

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 09:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mirror_states", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("failed_checks", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("auth_method", sa.String(length=32), nullable=True))
    op.create_table(
        "group_subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slack_team_id", sa.String(length=32), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("group_id", sa.BigInteger(), nullable=False),
        sa.Column("group_path", sa.String(length=1024), nullable=False),
        sa.Column("created_by", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("discovered_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_group_subscriptions")),
        sa.UniqueConstraint(
            "channel_id", "group_id", name=op.f("uq_group_subscriptions_channel_id_group_id")
        ),
    )
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        # Set for a project a group subscription added; NULL for a direct `watch P`.
        batch_op.add_column(sa.Column("group_subscription_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_subscriptions_group_subscription_id"), ["group_subscription_id"]
        )
    op.create_table(
        "digests",
        sa.Column("channel_id", sa.String(length=32), autoincrement=False, nullable=False),
        sa.Column("slack_team_id", sa.String(length=32), nullable=False),
        sa.Column("at_time", sa.String(length=5), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("always", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_sent_on", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("channel_id", name=op.f("pk_digests")),
    )


def downgrade() -> None:
    op.drop_table("digests")
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subscriptions_group_subscription_id"))
        batch_op.drop_column("group_subscription_id")
    op.drop_table("group_subscriptions")
    with op.batch_alter_table("mirror_states", schema=None) as batch_op:
        batch_op.drop_column("auth_method")
        batch_op.drop_column("failed_checks")
