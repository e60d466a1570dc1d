"""Accounts by region and role: staff only, so the roster look-up's plan holds on a database
whose statistics have been gathered (issue 7).

Residents have no region. With a city's residents in ``ix_accounts_region_role`` (122,385 of
them beside 61 staff), ``ANALYZE`` told SQLite that a region holds ~1,800 accounts, and every
urgent tap's pager look-up then skip-scanned the shifts of every rostered officer instead of
reading the region's staff and their shifts: the whole look-up took 0.52 ms with five years
of shifts, 0.19 ms with this index (0.25 ms forcing the staff-first order alone;
bench/results/decisions.md). It also holds ~2,000× fewer entries, and no resident
sign-up writes to it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

STAFF = sa.text("region_code IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_index("ix_accounts_region_role")
        batch_op.create_index(
            "ix_accounts_region_role",
            ["region_code", "role"],
            sqlite_where=STAFF,
            postgresql_where=STAFF,
        )


def downgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_index("ix_accounts_region_role")
        batch_op.create_index("ix_accounts_region_role", ["region_code", "role"])
