"""Division look-ups."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.divisions.models import Division, ancestor_codes
from server.errors import NotFound, ValidationFailed


def get_division(session: Session, code: str) -> Division:
    """The division with ``code``, or NotFound."""
    division = session.get(Division, code) if code.isdigit() and len(code) <= 12 else None
    if division is None:
        raise NotFound("未找到该行政区划代码。", message_en="Unknown division code.")
    return division


def full_name(session: Session, division: Division) -> str:
    """Province-to-division name, skipping the '市辖区' placeholder of municipalities."""
    codes = ancestor_codes(division.code)
    names = dict(
        session.execute(select(Division.code, Division.name).where(Division.code.in_(codes))).all()
    )
    parts = [names[c] for c in codes if c in names and names[c] not in {"市辖区", "县"}]
    return "".join(parts + [division.name])


def children(session: Session, code: str | None) -> list[Division]:
    """Direct children of ``code`` (provinces when None), ordered by code."""
    query = select(Division).order_by(Division.code)
    query = query.where(Division.parent_code == code if code else Division.parent_code.is_(None))
    return list(session.scalars(query))


def require_township(session: Session, code: str, *, field: str = "township_code") -> Division:
    """The township-level division ``code``, or a 422 naming ``field``."""
    division = session.get(Division, code) if code and code.isdigit() else None
    if division is None or division.level != "township":
        raise ValidationFailed(errors={field: ["不是有效的乡镇（街道）区划代码。"]})
    return division
