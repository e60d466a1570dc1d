"""Notifications: SMS delivery tables (attempts, receipts, call-back tasks, templates).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import server.db

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("sms_outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("claimed_at", server.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("claim_token", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("delivered_at", server.db.UTCDateTime(timezone=True), nullable=True)
        )

    op.create_table(
        "sms_attempts",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("outbox_id", _BIG_ID, nullable=False),
        sa.Column("attempt_no", sa.Integer(), nullable=False),
        sa.Column("claim_token", sa.String(length=32), nullable=False),
        sa.Column("worker_id", sa.String(length=64), nullable=False),
        sa.Column("backend", sa.String(length=20), nullable=False),
        sa.Column("started_at", server.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", server.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("provider_sid", sa.String(length=64), nullable=True),
        sa.Column("error_code", sa.String(length=20), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["outbox_id"],
            ["sms_outbox.id"],
            name=op.f("fk_sms_attempts_outbox_id_sms_outbox"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_attempts")),
    )
    with op.batch_alter_table("sms_attempts", schema=None) as batch_op:
        batch_op.create_index("ix_sms_attempts_outbox_id_id", ["outbox_id", "id"], unique=False)

    op.create_table(
        "sms_receipts",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("outbox_id", _BIG_ID, nullable=True),
        sa.Column("provider_sid", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("error_code", sa.String(length=20), nullable=True),
        sa.Column("received_at", server.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["outbox_id"],
            ["sms_outbox.id"],
            name=op.f("fk_sms_receipts_outbox_id_sms_outbox"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_receipts")),
    )
    with op.batch_alter_table("sms_receipts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sms_receipts_outbox_id"), ["outbox_id"], unique=False)
        batch_op.create_index(
            "ix_sms_receipts_provider_sid", ["provider_sid", "status"], unique=False
        )

    op.create_table(
        "sms_inbound",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("provider_sid", sa.String(length=64), nullable=False),
        sa.Column("from_phone", sa.String(length=32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("intent", sa.String(length=20), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=True),
        sa.Column("received_at", server.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_sms_inbound_case_id_cases"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_inbound")),
        sa.UniqueConstraint("provider_sid", name=op.f("uq_sms_inbound_provider_sid")),
    )
    with op.batch_alter_table("sms_inbound", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sms_inbound_from_phone_received_at", ["from_phone", "received_at"], unique=False
        )

    op.create_table(
        "callback_tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("outbox_id", _BIG_ID, nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_at", server.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closed_at", server.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_by_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_callback_tasks_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["closed_by_id"],
            ["accounts.id"],
            name=op.f("fk_callback_tasks_closed_by_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["outbox_id"],
            ["sms_outbox.id"],
            name=op.f("fk_callback_tasks_outbox_id_sms_outbox"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callback_tasks")),
        sa.UniqueConstraint("outbox_id", name=op.f("uq_callback_tasks_outbox_id")),
    )
    with op.batch_alter_table("callback_tasks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_callback_tasks_case_id_status", ["case_id", "status"], unique=False
        )

    op.create_table(
        "sms_template_overrides",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("updated_at", server.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["updated_by_id"],
            ["accounts.id"],
            name=op.f("fk_sms_template_overrides_updated_by_id_accounts"),
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_sms_template_overrides")),
    )


def downgrade() -> None:
    op.drop_table("sms_template_overrides")
    with op.batch_alter_table("callback_tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_callback_tasks_case_id_status")
    op.drop_table("callback_tasks")
    with op.batch_alter_table("sms_inbound", schema=None) as batch_op:
        batch_op.drop_index("ix_sms_inbound_from_phone_received_at")
    op.drop_table("sms_inbound")
    with op.batch_alter_table("sms_receipts", schema=None) as batch_op:
        batch_op.drop_index("ix_sms_receipts_provider_sid")
        batch_op.drop_index(batch_op.f("ix_sms_receipts_outbox_id"))
    op.drop_table("sms_receipts")
    with op.batch_alter_table("sms_attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_sms_attempts_outbox_id_id")
    op.drop_table("sms_attempts")
    with op.batch_alter_table("sms_outbox", schema=None) as batch_op:
        batch_op.drop_column("delivered_at")
        batch_op.drop_column("claim_token")
        batch_op.drop_column("claimed_at")
        batch_op.drop_column("claimed_by")
