"""Indexes for the measured hot paths (issue 7, bench/results/decisions.md).

- ``ix_cases_queue`` in the claim order (urgent first, earliest deadline, oldest, id): a claim
  reads the first entry instead of sorting every urgent case of the township's queue.
- ``ix_accounts_region_role``: the duty roster look-up of every urgent tap reads only the
  township's staff instead of every account.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index("ix_cases_queue")
        batch_op.create_index(
            "ix_cases_queue",
            [
                "township_code",
                "status",
                sa.text("urgent DESC"),
                "pay_due_at",
                "created_at",
                "id",
            ],
            unique=False,
        )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.create_index("ix_accounts_region_role", ["region_code", "role"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_index("ix_accounts_region_role")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index("ix_cases_queue")
        batch_op.create_index(
            "ix_cases_queue",
            ["township_code", "status", "urgent", "pay_due_at", "created_at"],
            unique=False,
        )
