"""The SMS worker claims pending messages in send order from an index.

Under a backlog (a flood: thousands of receipts waiting behind pages and sign-in codes) the
claim ``status = 'pending' AND next_attempt_at <= now ORDER BY priority, next_attempt_at, id``
read every due row and sorted it on each claim with ``ix_sms_outbox_due``. A partial index on
``(priority, next_attempt_at, id) WHERE status = 'pending'`` hands the rows out in that order
and holds only what is still to be sent.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    with op.batch_alter_table("sms_outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sms_outbox_pending_priority",
            ["priority", "next_attempt_at", "id"],
            sqlite_where=PENDING,
            postgresql_where=PENDING,
        )


def downgrade() -> None:
    with op.batch_alter_table("sms_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_sms_outbox_pending_priority")
