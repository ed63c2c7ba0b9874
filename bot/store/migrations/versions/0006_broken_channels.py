"""channels: broken subscriptions, and projects the monitor cannot check

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 08:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("channel_name", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("broken_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("broken_reason", sa.String(length=64), nullable=True))

    op.create_table(
        "project_checks",
        sa.Column("project_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("project_path", sa.String(length=1024), nullable=False),
        sa.Column("problem", sa.String(length=16), nullable=True),
        sa.Column("problem_detail", sa.Text(), nullable=True),
        sa.Column("problem_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("episode", sa.Integer(), nullable=False),
        sa.Column("notices", sa.Integer(), nullable=False),
        sa.Column("last_notice_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("path_checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_project_checks")),
    )


def downgrade() -> None:
    op.drop_table("project_checks")
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.drop_column("broken_reason")
        batch_op.drop_column("broken_at")
        batch_op.drop_column("channel_name")
