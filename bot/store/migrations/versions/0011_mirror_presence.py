"""mirror presence: which watched projects have push or pull mirrors, and a scan counter

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mirror_presence",
        sa.Column("project_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("has_push_mirrors", sa.Boolean(), nullable=False),
        sa.Column("has_pull_mirror", sa.Boolean(), nullable=False),
        sa.Column("learned_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_mirror_presence")),
    )
    op.create_table(
        "monitor_scans",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("scans", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_monitor_scans")),
    )


def downgrade() -> None:
    op.drop_table("monitor_scans")
    op.drop_table("mirror_presence")
