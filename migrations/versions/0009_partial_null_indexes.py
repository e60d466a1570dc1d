"""Two indexes that held mostly NULLs now leave them out (issue 7).

``ix_cases_subject_id_hash`` finds a person's earlier cases by ID-number hash, and
``ix_sms_outbox_provider_sid`` finds a message by the provider's id when its delivery report
arrives. Both are only ever searched with ``=`` on a value, which never matches NULL. Yet
every case filed without an ID number (every one-tap request from a resident who gave none)
and every SMS row, written before the provider has named it, put an entry for NULL into
them: two to three index writes of each urgent tap's ~27, all under SQLite's one write lock.
Partial (``IS NOT NULL``), they hold only what can be found; an equality on the column still
picks them on both databases (tests/test_migrations.py pins the plans).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# (table, index, columns): the first column is NULL until known
INDEXES = (
    ("cases", "ix_cases_subject_id_hash", ["subject_id_hash", "aid_type", "status"]),
    ("sms_outbox", "ix_sms_outbox_provider_sid", ["provider_sid"]),
)


def upgrade() -> None:
    for table, name, columns in INDEXES:
        known = sa.text(f"{columns[0]} IS NOT NULL")
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(name)
            batch_op.create_index(name, columns, sqlite_where=known, postgresql_where=known)


def downgrade() -> None:
    for table, name, columns in INDEXES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(name)
            batch_op.create_index(name, columns)
