"""alerts: outbox claims, episodes, scheduled checks

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 05:14:12.985299
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scheduled_checks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduled_checks")),
    )
    with op.batch_alter_table("scheduled_checks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_scheduled_checks_due_at"), ["due_at"], unique=False)

    with op.batch_alter_table("alert_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("shown_error", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("updates", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column("reminders", sa.Integer(), nullable=False, server_default="0")
        )

    with op.batch_alter_table("mirror_states", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("success_at_failure", sa.DateTime(timezone=True), nullable=True)
        )

    with op.batch_alter_table("slack_outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table("webhook_inbox", schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f("uq_webhook_inbox_event_uuid"), ["event_uuid"])


def downgrade() -> None:
    with op.batch_alter_table("webhook_inbox", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_webhook_inbox_event_uuid"), type_="unique")

    with op.batch_alter_table("slack_outbox", schema=None) as batch_op:
        batch_op.drop_column("claimed_until")

    with op.batch_alter_table("mirror_states", schema=None) as batch_op:
        batch_op.drop_column("success_at_failure")

    with op.batch_alter_table("alert_messages", schema=None) as batch_op:
        batch_op.drop_column("reminders")
        batch_op.drop_column("updates")
        batch_op.drop_column("shown_error")

    with op.batch_alter_table("scheduled_checks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scheduled_checks_due_at"))

    op.drop_table("scheduled_checks")
