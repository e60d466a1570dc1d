"""Intake: the duty roster.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import server.db

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "duty_shifts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("starts_at", server.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", server.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", server.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_duty_shifts_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_duty_shifts")),
    )
    with op.batch_alter_table("duty_shifts") as batch_op:
        batch_op.create_index(batch_op.f("ix_duty_shifts_account_id"), ["account_id"])
        batch_op.create_index("ix_duty_shifts_window", ["starts_at", "ends_at"])


def downgrade() -> None:
    op.drop_table("duty_shifts")
