"""oauth links: OAuth access/refresh tokens on linked accounts, pending device logins

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 09:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("linked_accounts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("link_kind", sa.String(length=8), server_default="pat", nullable=False)
        )
        batch_op.add_column(sa.Column("refresh_token_ciphertext", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("access_expires_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("broken_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "device_logins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slack_team_id", sa.String(length=32), nullable=False),
        sa.Column("slack_user_id", sa.String(length=32), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("device_code_ciphertext", sa.Text(), nullable=False),
        sa.Column("user_code", sa.String(length=32), nullable=False),
        sa.Column("verification_uri_complete", sa.Text(), nullable=False),
        sa.Column("response_url_ciphertext", sa.Text(), nullable=True),
        sa.Column("interval_seconds", sa.Double(), nullable=False),
        sa.Column("next_poll_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=255), nullable=True),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_logins")),
    )
    with op.batch_alter_table("device_logins", schema=None) as batch_op:
        batch_op.create_index("ix_device_logins_state_next_poll_at", ["state", "next_poll_at"])


def downgrade() -> None:
    with op.batch_alter_table("device_logins", schema=None) as batch_op:
        batch_op.drop_index("ix_device_logins_state_next_poll_at")
    op.drop_table("device_logins")
    with op.batch_alter_table("linked_accounts", schema=None) as batch_op:
        batch_op.drop_column("broken_at")
        batch_op.drop_column("access_expires_at")
        batch_op.drop_column("refresh_token_ciphertext")
        batch_op.drop_column("link_kind")
