"""Foundation: divisions, accounts, cases, events, documents, outbox, idempotency, audit.

Revision ID: 0001
Revises:
Create Date: 2026-11-23 14:32:57.583756
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import server.db

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_counters",
        sa.Column("prefix", sa.String(length=30), nullable=False),
        sa.Column("day", sa.String(length=8), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("prefix", "day", name=op.f("pk_case_counters")),
    )
    op.create_table(
        "divisions",
        sa.Column("code", sa.String(length=12), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("level", sa.String(length=10), nullable=False),
        sa.Column("parent_code", sa.String(length=12), nullable=True),
        sa.ForeignKeyConstraint(
            ["parent_code"], ["divisions.code"], name=op.f("fk_divisions_parent_code_divisions")
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_divisions")),
    )
    with op.batch_alter_table("divisions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_divisions_level"), ["level"], unique=False)
        batch_op.create_index(batch_op.f("ix_divisions_parent_code"), ["parent_code"], unique=False)

    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=True),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=True),
        sa.Column("id_number_enc", sa.LargeBinary(), nullable=True),
        sa.Column("id_number_hash", sa.String(length=64), nullable=True),
        sa.Column("id_number_masked", sa.String(length=18), nullable=True),
        sa.Column("residence_township_code", sa.String(length=12), nullable=True),
        sa.Column("hukou_township_code", sa.String(length=12), nullable=True),
        sa.Column("region_code", sa.String(length=12), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.text("(true)"), nullable=False),
        sa.Column("failed_logins", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("locked_until", server.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", server.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["hukou_township_code"],
            ["divisions.code"],
            name=op.f("fk_accounts_hukou_township_code_divisions"),
        ),
        sa.ForeignKeyConstraint(
            ["region_code"], ["divisions.code"], name=op.f("fk_accounts_region_code_divisions")
        ),
        sa.ForeignKeyConstraint(
            ["residence_township_code"],
            ["divisions.code"],
            name=op.f("fk_accounts_residence_township_code_divisions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("username", name=op.f("uq_accounts_username")),
    )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_accounts_id_number_hash"), ["id_number_hash"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_accounts_phone"), ["phone"], unique=False)
        batch_op.create_index(
            "uq_accounts_resident_phone",
            ["phone"],
            unique=True,
            sqlite_where=sa.text("role = 'resident'"),
            postgresql_where=sa.text("role = 'resident'"),
        )

    op.create_table(
        "audit_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", server.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_role", sa.String(length=20), nullable=True),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("target_type", sa.String(length=30), nullable=False),
        sa.Column("target_id", sa.String(length=64), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["accounts.id"], name=op.f("fk_audit_log_actor_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(
            "ix_audit_log_target", ["target_type", "target_id", "id"], unique=False
        )

    op.create_table(
        "cases",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_no", sa.String(length=40), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("aid_type", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("channel", sa.String(length=30), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("subject_phone", sa.String(length=20), nullable=True),
        sa.Column("subject_id_hash", sa.String(length=64), nullable=True),
        sa.Column("township_code", sa.String(length=12), nullable=True),
        sa.Column("county_code", sa.String(length=12), nullable=True),
        sa.Column("accountable_township_code", sa.String(length=12), nullable=True),
        sa.Column("routing_evidence", sa.String(length=40), nullable=True),
        sa.Column("routing_reason", sa.Text(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lng", sa.Float(), nullable=True),
        sa.Column("address", sa.String(length=300), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("contact_phone", sa.String(length=20), nullable=True),
        sa.Column("household_size", sa.Integer(), nullable=True),
        sa.Column("monthly_income_fen", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("staff_notes", sa.Text(), nullable=True),
        sa.Column("duplicate_of_id", sa.Uuid(), nullable=True),
        sa.Column("claimed_by_id", sa.Integer(), nullable=True),
        sa.Column("claimed_at", server.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("lease_expires_at", server.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("referred_department", sa.String(length=40), nullable=True),
        sa.Column("approved_amount_fen", sa.BigInteger(), nullable=True),
        sa.Column("paid_amount_fen", sa.BigInteger(), nullable=True),
        sa.Column("pay_method", sa.String(length=30), nullable=True),
        sa.Column("pay_reference", sa.String(length=100), nullable=True),
        sa.Column("paid_at", server.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("pay_due_at", server.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("paperwork_due_at", server.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", server.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", server.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closed_at", server.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.ForeignKeyConstraint(
            ["accountable_township_code"],
            ["divisions.code"],
            name=op.f("fk_cases_accountable_township_code_divisions"),
        ),
        sa.ForeignKeyConstraint(
            ["claimed_by_id"], ["accounts.id"], name=op.f("fk_cases_claimed_by_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["county_code"], ["divisions.code"], name=op.f("fk_cases_county_code_divisions")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["accounts.id"], name=op.f("fk_cases_created_by_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["duplicate_of_id"], ["cases.id"], name=op.f("fk_cases_duplicate_of_id_cases")
        ),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["accounts.id"], name=op.f("fk_cases_resident_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["township_code"], ["divisions.code"], name=op.f("fk_cases_township_code_divisions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
        sa.UniqueConstraint("case_no", name=op.f("uq_cases_case_no")),
    )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index(
            "ix_cases_queue",
            ["township_code", "status", "urgent", "pay_due_at", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_cases_resident_created", ["resident_id", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_cases_subject_id_hash", ["subject_id_hash", "aid_type", "status"], unique=False
        )
        batch_op.create_index(
            "ix_cases_subject_phone", ["subject_phone", "aid_type", "status"], unique=False
        )
        batch_op.create_index(
            "ix_cases_triage", ["county_code", "status", "urgent", "created_at"], unique=False
        )

    op.create_table(
        "case_documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("file_ref", sa.String(length=500), nullable=True),
        sa.Column("added_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", server.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["added_by_id"], ["accounts.id"], name=op.f("fk_case_documents_added_by_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_case_documents_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_documents")),
    )
    with op.batch_alter_table("case_documents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_documents_case_id"), ["case_id"], unique=False)

    op.create_table(
        "case_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("at", server.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_role", sa.String(length=20), nullable=True),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("from_status", sa.String(length=30), nullable=True),
        sa.Column("to_status", sa.String(length=30), nullable=True),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.Column("resident_visible", sa.Boolean(), nullable=False),
        sa.Column("text_zh", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["accounts.id"], name=op.f("fk_case_events_actor_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_events_case_id_cases"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_events")),
    )
    with op.batch_alter_table("case_events", schema=None) as batch_op:
        batch_op.create_index("ix_case_events_case_id_id", ["case_id", "id"], unique=False)

    op.create_table(
        "idempotency_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("endpoint", sa.String(length=100), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", server.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_idempotency_keys_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_idempotency_keys_case_id_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_keys")),
        sa.UniqueConstraint("account_id", "key", name=op.f("uq_idempotency_keys_account_id_key")),
    )
    op.create_table(
        "sms_outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("to_phone", sa.String(length=20), nullable=False),
        sa.Column("template", sa.String(length=40), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", server.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("provider_sid", sa.String(length=64), nullable=True),
        sa.Column("last_error_code", sa.String(length=20), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", server.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", server.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", server.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_sms_outbox_case_id_cases"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_outbox")),
    )
    with op.batch_alter_table("sms_outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sms_outbox_case_id"), ["case_id"], unique=False)
        batch_op.create_index(
            "ix_sms_outbox_due", ["status", "next_attempt_at", "priority"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_sms_outbox_provider_sid"), ["provider_sid"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("sms_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sms_outbox_provider_sid"))
        batch_op.drop_index("ix_sms_outbox_due")
        batch_op.drop_index(batch_op.f("ix_sms_outbox_case_id"))

    op.drop_table("sms_outbox")
    op.drop_table("idempotency_keys")
    with op.batch_alter_table("case_events", schema=None) as batch_op:
        batch_op.drop_index("ix_case_events_case_id_id")

    op.drop_table("case_events")
    with op.batch_alter_table("case_documents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_documents_case_id"))

    op.drop_table("case_documents")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index("ix_cases_triage")
        batch_op.drop_index("ix_cases_subject_phone")
        batch_op.drop_index("ix_cases_subject_id_hash")
        batch_op.drop_index("ix_cases_resident_created")
        batch_op.drop_index("ix_cases_queue")

    op.drop_table("cases")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_log_target")

    op.drop_table("audit_log")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_accounts_resident_phone",
            sqlite_where=sa.text("role = 'resident'"),
            postgresql_where=sa.text("role = 'resident'"),
        )
        batch_op.drop_index(batch_op.f("ix_accounts_phone"))
        batch_op.drop_index(batch_op.f("ix_accounts_id_number_hash"))

    op.drop_table("accounts")
    with op.batch_alter_table("divisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_divisions_parent_code"))
        batch_op.drop_index(batch_op.f("ix_divisions_level"))

    op.drop_table("divisions")
    op.drop_table("case_counters")
