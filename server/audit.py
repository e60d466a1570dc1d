"""The audit trail: every state change and every staff read of a full record."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import has_request_context, request
from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, Session, mapped_column

from server.db import Base, UTCDateTime, utcnow


class AuditEntry(Base):
    """Who did or read what, when, from where."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_target", "target_type", "target_id", "id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    actor_role: Mapped[str | None] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(60))
    target_type: Mapped[str] = mapped_column(String(30))
    target_id: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)


AUDIT = AuditEntry.__table__


def _request_ip() -> str | None:
    return request.remote_addr if has_request_context() else None


def record(
    session: Session,
    *,
    actor: Any,
    action: str,
    target_type: str,
    target_id: Any,
    data: dict[str, Any] | None = None,
    ip: str | None = None,
) -> AuditEntry:
    """Add an audit entry to the caller's transaction (the request IP is taken when known);
    written by the next flush, in the order entries were added."""
    if session.new:
        session.flush()  # the actor this entry refers to may be pending
    entry = AuditEntry(
        at=utcnow(),
        actor_id=getattr(actor, "id", None),
        actor_role=getattr(actor, "role", None),
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        ip=_request_ip() if ip is None else ip,
        data=data,
    )
    session.add(entry)
    return entry
