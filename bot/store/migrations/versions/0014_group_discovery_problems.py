"""group subscriptions: why discovery cannot list the group, and since when

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 12:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("group_subscriptions") as table:
        table.add_column(sa.Column("problem", sa.Text(), nullable=True))
        table.add_column(sa.Column("problem_since", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("group_subscriptions") as table:
        table.drop_column("problem_since")
        table.drop_column("problem")
