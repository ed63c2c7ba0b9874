"""replicas: the monitor lease, the shared GitLab request budget, owned outbox claims

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 08:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
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
        "request_budgets",
        sa.Column("token_key", sa.String(length=64), nullable=False),
        sa.Column("claims", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("token_key", name=op.f("pk_request_budgets")),
    )
    op.create_table(
        "request_grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_key", sa.String(length=64), nullable=False),
        sa.Column("granted_at", sa.Double(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_grants")),
    )
    with op.batch_alter_table("request_grants", schema=None) as batch_op:
        batch_op.create_index("ix_request_grants_token_key_granted_at", ["token_key", "granted_at"])

    with op.batch_alter_table("slack_outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("slack_outbox", schema=None) as batch_op:
        batch_op.drop_column("claimed_by")
    with op.batch_alter_table("request_grants", schema=None) as batch_op:
        batch_op.drop_index("ix_request_grants_token_key_granted_at")
    op.drop_table("request_grants")
    op.drop_table("request_budgets")
    op.drop_table("leases")
