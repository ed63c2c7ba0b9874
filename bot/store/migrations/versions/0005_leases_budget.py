"""replicas: the monitor lease, the shared GitLab request budget, owned outbox claims

Revision ID: 0005
Revises: 0002
Create Date: 2026-12-01 08:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=True),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )
    op.create_table(
        "request_slots",
        sa.Column("token_key", sa.String(length=64), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("used_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("token_key", "slot", name=op.f("pk_request_slots")),
    )
    with op.batch_alter_table("request_slots", schema=None) as batch_op:
        batch_op.create_index("ix_request_slots_token_key_used_at", ["token_key", "used_at"])

    with op.batch_alter_table("slack_outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("slack_outbox", schema=None) as batch_op:
        batch_op.drop_column("claimed_by")
    with op.batch_alter_table("request_slots", schema=None) as batch_op:
        batch_op.drop_index("ix_request_slots_token_key_used_at")
    op.drop_table("request_slots")
    op.drop_table("leases")
