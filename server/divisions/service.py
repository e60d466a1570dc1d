"""Division look-ups."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, has_app_context
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.divisions.models import Division, ancestor_codes
from server.errors import NotFound, ValidationFailed
from server.routing.gazetteer import gazetteer


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
    """The township-level division ``code`` anywhere in China (a person's residence or hukou),
    or a 422 naming ``field``. Where a case may go: ``require_case_township``."""
    division = session.get(Division, code) if code and code.isdigit() and len(code) <= 12 else None
    if division is None or division.level != "township":
        raise ValidationFailed(errors={field: ["不是有效的乡镇（街道）区划代码。"]})
    return division


DEFAULT_CITY = "3711"


def deployment_city() -> str:
    """The city (4-digit code) this deployment serves: config DEPLOYMENT_CITY."""
    if has_app_context():
        return str(current_app.config.get("DEPLOYMENT_CITY", DEFAULT_CITY))
    return DEFAULT_CITY


@dataclass(frozen=True)
class CaseTownship:
    """A township a case may be placed in: its code and name."""

    code: str
    name: str


def require_case_township(
    session: Session,
    code: str,
    *,
    field: str = "township_code",
    resident: bool = False,
    city: str | None = None,
) -> CaseTownship:
    """The township a case may be placed in, moved to or assigned to: one of the deployment
    city's; else a 422 that says why (a resident is told the hotline to call)."""
    city = city or deployment_city()
    code = str(code or "")
    gaz = gazetteer(session, city)
    # The city's townships come from the per-process gazetteer: no query on the tap's path.
    if len(code) == 9 and code.startswith(city):
        name = gaz.name(code)
        if name:
            return CaseTownship(code, name)
    division = require_township(session, code, field=field)
    city_name = gaz.city_name or city
    if resident:
        zh = (
            f"本服务只覆盖{city_name}，{division.name}不在服务范围内。"
            "需要救助请拨打12349社会救助热线。"
        )
        en = (
            f"This service covers {city_name} only; the township is outside it. "
            "Call the 12349 social assistance hotline for help."
        )
    else:
        zh = (
            f"{division.name}（{code}）不在{city_name}，"
            f"本系统只能把案件放到{city_name}的乡镇（街道）。"
        )
        en = f"Township {code} is outside {city_name}; cases go only to townships of {city_name}."
    raise ValidationFailed(zh, code="outside_deployment_area", message_en=en, errors={field: [zh]})
