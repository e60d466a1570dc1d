"""An ID number binds to one account; idempotency fingerprints hold no ID number.

- ``uq_accounts_id_number_hash``: a unique (partial) index on the keyed hash of an account's
  ID number replaces the plain index, so a second account claiming someone's ID number is
  refused even when both claims commit at once. Accounts that already share one are a
  staff decision: the upgrade stops and names them; unbind with
  ``flask --app wsgi staff unbind-id-number`` and upgrade again.
- ``idempotency_keys.folded_in``: whether the first answer to a key joined the person's open
  case instead of creating one (a retry after that case ended is a new request).
- ``idempotency_keys.request_hash`` was an unkeyed SHA-256 of the body, which includes a
  hotline caller's ID number: guessable. New fingerprints are keyed (HMAC under
  ``ID_HASH_KEY``); the old ones are blanked (a blank fingerprint matches on the endpoint).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

KNOWN = sa.text("id_number_hash IS NOT NULL")


def upgrade() -> None:
    shared = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT id_number_hash, COUNT(*) FROM accounts WHERE id_number_hash IS NOT NULL "
                "GROUP BY id_number_hash HAVING COUNT(*) > 1"
            )
        )
        .all()
    )
    if shared:
        ids = (
            op.get_bind()
            .execute(
                sa.text(
                    "SELECT id FROM accounts WHERE id_number_hash IN :hashes ORDER BY id"
                ).bindparams(sa.bindparam("hashes", [row[0] for row in shared], expanding=True))
            )
            .scalars()
            .all()
        )
        raise RuntimeError(
            f"accounts {ids} share an ID number; unbind it from all but its holder with "
            "`flask --app wsgi staff unbind-id-number`, then upgrade again"
        )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_index("ix_accounts_id_number_hash")
        batch_op.create_index(
            "uq_accounts_id_number_hash",
            ["id_number_hash"],
            unique=True,
            sqlite_where=KNOWN,
            postgresql_where=KNOWN,
        )
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("folded_in", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.execute("UPDATE idempotency_keys SET request_hash = ''")


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_column("folded_in")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_index("uq_accounts_id_number_hash")
        batch_op.create_index("ix_accounts_id_number_hash", ["id_number_hash"], unique=False)
