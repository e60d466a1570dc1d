"""Accounts of residents and staff."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import Boolean, ForeignKey, Index, Integer, LargeBinary, String, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from server.db import Base, UTCDateTime, utcnow

ROLES = ("resident", "operator", "grid_worker", "duty", "supervisor", "admin")
STAFF_ROLES = ROLES[1:]
ROLE_LABELS = {
    "resident": "居民",
    "operator": "12349 热线坐席",
    "grid_worker": "网格员/协理员",
    "duty": "乡镇（街道）值班人员",
    "supervisor": "区县民政督导",
    "admin": "系统管理员",
}
# The level of region each staff role is scoped to (the length of its division code).
SCOPE_LEVEL = {"duty": 9, "grid_worker": 9, "supervisor": 6, "operator": 4, "admin": 4}


class Account(Base):
    """A resident or a staff member. Residents are keyed by phone, staff by username."""

    __tablename__ = "accounts"
    __table_args__ = (
        # One resident account per phone number; staff may share a desk phone.
        Index(
            "uq_accounts_resident_phone",
            "phone",
            unique=True,
            sqlite_where=text("role = 'resident'"),
            postgresql_where=text("role = 'resident'"),
        ),
        # Who is on duty in a township (roster look-up on every urgent tap): without it the
        # look-up reads every account, residents included (bench/results/decisions.md). Staff
        # only (residents have no region): with residents in it, the statistics made an
        # analysed database start the look-up from every officer's shifts (migration 0008).
        Index(
            "ix_accounts_region_role",
            "region_code",
            "role",
            sqlite_where=text("region_code IS NOT NULL"),
            postgresql_where=text("region_code IS NOT NULL"),
        ),
        # An ID number belongs to one account: a second account claiming it is refused
        # (409), even when both claims commit at once (migration 0010).
        Index(
            "uq_accounts_id_number_hash",
            "id_number_hash",
            unique=True,
            sqlite_where=text("id_number_hash IS NOT NULL"),
            postgresql_where=text("id_number_hash IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    role: Mapped[str] = mapped_column(String(20))
    username: Mapped[str | None] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    phone: Mapped[str | None] = mapped_column(String(20), index=True)  # E.164
    name: Mapped[str | None] = mapped_column(String(100))
    # Resident ID number (身份证号): ciphertext, keyed hash for look-ups, masked form for display.
    id_number_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    id_number_hash: Mapped[str | None] = mapped_column(String(64))
    id_number_masked: Mapped[str | None] = mapped_column(String(18))
    residence_township_code: Mapped[str | None] = mapped_column(
        String(12), ForeignKey("divisions.code")
    )
    hukou_township_code: Mapped[str | None] = mapped_column(
        String(12), ForeignKey("divisions.code")
    )
    # Staff scope: township (duty, grid_worker), county (supervisor), city (operator, admin).
    region_code: Mapped[str | None] = mapped_column(String(12), ForeignKey("divisions.code"))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    # Set when an administrator chose the password: the console asks for a new one at sign-in.
    must_change_password: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def is_staff(self) -> bool:
        return self.role != "resident"


class SignInCode(Base):
    """A resident's SMS sign-in code: only its keyed hash is stored, never the code."""

    __tablename__ = "sign_in_codes"
    __table_args__ = (Index("ix_sign_in_codes_phone_created", "phone", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    phone: Mapped[str] = mapped_column(String(20))  # E.164
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class StaffSignInThrottle(Base):
    """Failed staff sign-ins of one username from one client address, and until when that
    pair must wait. Per pair, not per account: nobody elsewhere can keep an officer out.

    Rows exist for usernames nobody has (they must behave alike). The client address is
    kept only as a keyed hash.
    """

    __tablename__ = "staff_sign_in_throttles"
    __table_args__ = (
        Index("ux_staff_sign_in_throttles_user_client", "username", "client_hash", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    client_hash: Mapped[str] = mapped_column(String(64))
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    last_failure_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    blocked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class AuthSession(Base):
    """One signed-in device: a family of rotating refresh tokens. Revoking it ends them all.

    Access tokens carry its id (``sid``), so a revoked session stops access at once.
    """

    __tablename__ = "auth_sessions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # logout, reuse (an old refresh token came back), disabled, expired
    revoked_reason: Mapped[str | None] = mapped_column(String(20))


class RefreshToken(Base):
    """One refresh token of a session (SHA-256 of the opaque token; used once, then rotated)."""

    __tablename__ = "refresh_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("auth_sessions.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Spent without being exchanged: a retry of its predecessor replaced it. Such a token is
    # never a retry itself; presented again it is a copy.
    superseded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
