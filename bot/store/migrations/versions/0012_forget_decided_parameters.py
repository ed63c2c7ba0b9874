"""approvals: erase the parameters of decided requests

A request's encrypted parameters may hold a pull mirror's password. They are needed only
until the request is decided and run; requests decided before this release kept them.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 10:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "UPDATE approval_requests SET params_ciphertext = NULL "
        "WHERE status NOT IN ('pending', 'approved')"
    )


def downgrade() -> None:
    pass  # what was erased stays erased
