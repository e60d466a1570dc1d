"""The divisions table."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from server.db import Base


class Division(Base):
    """One statistical division; the code's length gives its level, its prefix its parents."""

    __tablename__ = "divisions"

    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    level: Mapped[str] = mapped_column(String(10), index=True)
    parent_code: Mapped[str | None] = mapped_column(
        String(12), ForeignKey("divisions.code"), index=True
    )


def ancestor_codes(code: str) -> list[str]:
    """Codes of the province, city, county and township containing ``code`` (outermost first)."""
    return [code[:n] for n in (2, 4, 6, 9) if n < len(code)]


def within(scope: str, code: str | None) -> bool:
    """True when division ``code`` lies inside (or is) ``scope``; codes nest by prefix."""
    return bool(code) and code.startswith(scope)
