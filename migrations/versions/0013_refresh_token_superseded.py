"""Refresh tokens remember being superseded by a retry (issue 19, finding 8).

A refresh retried after a lost answer spends the pair it had been given. That spent token
looked like any exchanged one, so it could itself pass as a retry and yield a second live
pair. ``superseded_at`` marks it: presented again, it is a copy.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import server.db

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("superseded_at", server.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.drop_column("superseded_at")
