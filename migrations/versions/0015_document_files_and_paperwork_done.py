"""Documents become stored files: object key, type, size and hash per document, the signed
commitment's text, the retention purge's time; cases record when their paperwork was done.

A document's ``file_ref`` was free text that nothing stored or checked; what it said is kept
in the document's note.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import server.db

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "UPDATE case_documents SET note = COALESCE(note || ' ', '') || '（原登记文件引用：' "
        "|| file_ref || '）' WHERE file_ref IS NOT NULL"
    )
    with op.batch_alter_table("case_documents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("storage_key", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("content_type", sa.String(length=50), nullable=True))
        batch_op.add_column(sa.Column("size_bytes", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("sha256", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("commitment_text", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("added_by_role", sa.String(length=20), nullable=True))
        batch_op.add_column(
            sa.Column("purged_at", server.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_case_documents_storage_key"), ["storage_key"]
        )
        batch_op.drop_column("file_ref")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("paperwork_done_at", server.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("paperwork_done_at")
    with op.batch_alter_table("case_documents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("file_ref", sa.String(length=500), nullable=True))
        batch_op.drop_constraint(batch_op.f("uq_case_documents_storage_key"), type_="unique")
        batch_op.drop_column("purged_at")
        batch_op.drop_column("added_by_role")
        batch_op.drop_column("commitment_text")
        batch_op.drop_column("sha256")
        batch_op.drop_column("size_bytes")
        batch_op.drop_column("content_type")
        batch_op.drop_column("storage_key")
