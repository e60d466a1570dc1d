"""Duty shifts by account and end: the roster look-up of every urgent tap reads the shifts
that have not ended of the region's few staff, not every shift ever started (issue 7).

With five years of daily shifts (110,340) the tap's pager look-up took 3.05 ms on SQLite and
6.8 ms on PostgreSQL through ``ix_duty_shifts_window`` or ``ix_duty_shifts_account_id``,
0.11 ms and 0.48 ms through this index (bench/results/decisions.md).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("duty_shifts", schema=None) as batch_op:
        batch_op.drop_index("ix_duty_shifts_window")
        batch_op.drop_index("ix_duty_shifts_account_id")
        batch_op.create_index("ix_duty_shifts_account_ends", ["account_id", "ends_at"])


def downgrade() -> None:
    with op.batch_alter_table("duty_shifts", schema=None) as batch_op:
        batch_op.drop_index("ix_duty_shifts_account_ends")
        batch_op.create_index("ix_duty_shifts_account_id", ["account_id"])
        batch_op.create_index("ix_duty_shifts_window", ["starts_at", "ends_at"])
