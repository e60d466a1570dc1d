"""Workflow: county aid standards, calendar overrides, fired escalations.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import server.db

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "aid_standards",
        sa.Column("county_code", sa.String(length=12), nullable=False),
        sa.Column("urban_monthly_fen", sa.BigInteger(), nullable=False),
        sa.Column("rural_monthly_fen", sa.BigInteger(), nullable=False),
        sa.Column("township_urgent_cap_fen", sa.BigInteger(), nullable=False),
        sa.Column("township_approval_cap_fen", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", server.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["county_code"], ["divisions.code"], name=op.f("fk_aid_standards_county_code_divisions")
        ),
        sa.ForeignKeyConstraint(
            ["updated_by_id"],
            ["accounts.id"],
            name=op.f("fk_aid_standards_updated_by_id_accounts"),
        ),
        sa.PrimaryKeyConstraint("county_code", name=op.f("pk_aid_standards")),
    )
    op.create_table(
        "calendar_overrides",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("workday", sa.Boolean(), nullable=False),
        sa.Column("note", sa.String(length=100), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", server.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["accounts.id"],
            name=op.f("fk_calendar_overrides_created_by_id_accounts"),
        ),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_calendar_overrides")),
    )
    op.create_table(
        "escalations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("ref", sa.String(length=40), nullable=False),
        sa.Column("fired_at", server.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("notified", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_escalations_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escalations")),
        sa.UniqueConstraint("case_id", "kind", "ref", name=op.f("uq_escalations_case_id_kind_ref")),
    )
    with op.batch_alter_table("escalations") as batch_op:
        batch_op.create_index(batch_op.f("ix_escalations_case_id"), ["case_id"])


def downgrade() -> None:
    op.drop_table("escalations")
    op.drop_table("calendar_overrides")
    op.drop_table("aid_standards")
