"""retention: slim webhook events, indexes for the passes and the pruner, one check per delay

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 08:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The whole push payload (commit messages, authors' e-mail addresses) was stored and
    # never read: the bot needs the event's kind and project, which have columns.
    with op.batch_alter_table("webhook_inbox", schema=None) as batch_op:
        batch_op.drop_column("payload")
        # The inbox pass and /metrics look for `processed_at IS NULL` in id order; the
        # pruner for `processed_at < cutoff`. One index serves both.
        batch_op.create_index("ix_webhook_inbox_processed_at", ["processed_at", "id"])

    with op.batch_alter_table("slack_outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_slack_outbox_created_at"), ["created_at"])

    with op.batch_alter_table("alert_messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_messages_resolved_at"), ["resolved_at"])

    # At most one pending check per project and reason (the reason names the delay):
    # keep the earliest of any duplicates already there.
    op.execute(
        "DELETE FROM scheduled_checks WHERE id NOT IN "
        "(SELECT MIN(id) FROM scheduled_checks GROUP BY project_id, reason)"
    )
    with op.batch_alter_table("scheduled_checks", schema=None) as batch_op:
        batch_op.create_unique_constraint(
            batch_op.f("uq_scheduled_checks_project_id_reason"), ["project_id", "reason"]
        )


def downgrade() -> None:
    with op.batch_alter_table("scheduled_checks", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("uq_scheduled_checks_project_id_reason"), type_="unique"
        )

    with op.batch_alter_table("alert_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_messages_resolved_at"))

    with op.batch_alter_table("slack_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_slack_outbox_created_at"))

    with op.batch_alter_table("webhook_inbox", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_inbox_processed_at")
        batch_op.add_column(
            sa.Column("payload", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )
