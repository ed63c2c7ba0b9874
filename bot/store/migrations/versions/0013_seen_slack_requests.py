"""seen Slack requests: signatures admitted once, shared by every replica

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "seen_slack_requests",
        sa.Column("signature_sha256", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("signature_sha256", name=op.f("pk_seen_slack_requests")),
    )
    op.create_index(
        op.f("ix_seen_slack_requests_expires_at"), "seen_slack_requests", ["expires_at"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_seen_slack_requests_expires_at"), table_name="seen_slack_requests")
    op.drop_table("seen_slack_requests")
