"""Staff sign-in throttle per (username, client address) replaces the account lockout.

Seven wrong passwords locked an account for everyone, so anybody could keep a duty officer
out of the queue (issue 19, finding 6). Failures are now counted per username and client
address (hashed), unknown usernames alike, with growing waits; the account's own counters go.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import server.db

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staff_sign_in_throttles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("client_hash", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_failure_at", server.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("blocked_until", server.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_sign_in_throttles")),
    )
    with op.batch_alter_table("staff_sign_in_throttles", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_staff_sign_in_throttles_last_failure_at"),
            ["last_failure_at"],
            unique=False,
        )
        batch_op.create_index(
            "ux_staff_sign_in_throttles_user_client", ["username", "client_hash"], unique=True
        )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("failed_logins")
        batch_op.drop_column("locked_until")


def downgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("locked_until", server.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("failed_logins", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
    with op.batch_alter_table("staff_sign_in_throttles", schema=None) as batch_op:
        batch_op.drop_index("ux_staff_sign_in_throttles_user_client")
        batch_op.drop_index(batch_op.f("ix_staff_sign_in_throttles_last_failure_at"))
    op.drop_table("staff_sign_in_throttles")
