"""Money rules in integer fen (分): county aid standards, township authority, amount ranges.

- 支出型临时救助 is 3–12 × the county's urban monthly 低保 standard (000 §二(一)8);
  below 3× is refused, above 12× needs the county (一事一议).
- An approval above the township's approval cap goes to the county (一事一议).
- Emergency aid (急难型) may be paid before approval up to the township's urgent cap (先行救助).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.cases.workflow_models import AidStandard
from server.db import utcnow
from server.divisions.models import Division
from server.errors import Conflict, NotFound, ValidationFailed

EXPENDITURE_AID_TYPE = "temporary_expenditure"  # 临时救助（支出型）
EXPENDITURE_MIN_MULTIPLE = 3
EXPENDITURE_MAX_MULTIPLE = 12

# Demo values for 日照市 counties; illustrative, not official figures.
DEMO_STANDARDS_FEN = {
    "urban_monthly_fen": 105_000,  # 1050 元
    "rural_monthly_fen": 84_000,  # 840 元
    "township_urgent_cap_fen": 200_000,  # 2000 元
    "township_approval_cap_fen": 1_260_000,  # 12600 元 = 12 × urban
}


def yuan(fen: int) -> str:
    """Integer fen as a yuan string with two decimals: 50000 -> "500.00"."""
    sign = "-" if fen < 0 else ""
    fen = abs(int(fen))
    return f"{sign}{fen // 100}.{fen % 100:02d}"


def parse_yuan(text: str) -> int:
    """A yuan amount typed by an administrator ("1050", "1050.5") as integer fen; exact."""
    try:
        value = Decimal(str(text).strip())
        if not value.is_finite() or value < 0:
            raise ValueError(f"not an amount: {text!r}")
        # Raises too for a number with more digits than the context holds ("1e9999").
        fen = (value * 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP)
    except InvalidOperation as exc:
        raise ValueError(f"not an amount: {text!r}") from exc
    if fen != value * 100:
        raise ValueError(f"more than two decimals: {text!r}")
    return int(fen)


# --- standards ------------------------------------------------------------------------------


def get_standard(session: Session, county_code: str) -> AidStandard | None:
    """The county's aid standards, or None."""
    return session.get(AidStandard, county_code)


def require_standard(session: Session, county_code: str | None) -> AidStandard:
    """The county's aid standards; 409 when an administrator has not set them yet."""
    standard = session.get(AidStandard, county_code) if county_code else None
    if standard is None:
        raise Conflict(
            "该区县尚未设置救助标准，请联系系统管理员设置后再操作。",
            code="aid_standard_missing",
            message_en="No aid standards are set for this county; ask an administrator.",
        )
    return standard


def set_standard(
    session: Session,
    *,
    county_code: str,
    urban_monthly_fen: int,
    rural_monthly_fen: int,
    township_urgent_cap_fen: int,
    township_approval_cap_fen: int,
    actor: Any = None,
) -> AidStandard:
    """Create or replace a county's aid standards (validated)."""
    division = session.get(Division, county_code)
    if division is None or division.level != "county":
        raise NotFound("未找到该区县。", message_en="County not found.")
    errors: dict[str, list[str]] = {}
    values = {
        "urban_monthly_fen": urban_monthly_fen,
        "rural_monthly_fen": rural_monthly_fen,
        "township_urgent_cap_fen": township_urgent_cap_fen,
        "township_approval_cap_fen": township_approval_cap_fen,
    }
    for name, value in values.items():
        if value <= 0:
            errors[name] = ["必须大于 0。"]
    if not errors and township_urgent_cap_fen > township_approval_cap_fen:
        errors["township_urgent_cap_fen"] = ["先行救助上限不能高于乡镇审批上限。"]
    if errors:
        raise ValidationFailed(errors=errors)
    standard = session.get(AidStandard, county_code)
    if standard is None:
        standard = AidStandard(county_code=county_code)
        session.add(standard)
    for name, value in values.items():
        setattr(standard, name, value)
    standard.updated_at = utcnow()
    standard.updated_by_id = getattr(actor, "id", None)
    session.flush()
    return standard


def seed_demo_standards(session: Session, *, city: str) -> int:
    """Demo standards for every county of ``city`` that has none; returns how many were set."""
    counties = session.scalars(
        select(Division.code).where(Division.level == "county", Division.code.startswith(city))
    ).all()
    added = 0
    for code in counties:
        if session.get(AidStandard, code) is None:
            set_standard(
                session,
                county_code=code,
                **DEMO_STANDARDS_FEN,
            )
            added += 1
    return added


# --- rules ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApprovalRoute:
    """Who may approve an amount: the township itself, or the county (一事一议) and why."""

    level: str  # "township" | "county"
    reason_zh: str = ""


def expenditure_range(standard: AidStandard) -> tuple[int, int]:
    """The 支出型 range in fen: 3× to 12× the urban monthly standard, inclusive."""
    return (
        EXPENDITURE_MIN_MULTIPLE * standard.urban_monthly_fen,
        EXPENDITURE_MAX_MULTIPLE * standard.urban_monthly_fen,
    )


def approval_route(*, standard: AidStandard, aid_type: str, amount_fen: int) -> ApprovalRoute:
    """Where an approval of ``amount_fen`` belongs; 422 for an amount no one may approve."""
    if amount_fen <= 0:
        raise ValidationFailed(errors={"amount_fen": ["金额必须大于 0。"]})
    reasons = []
    if aid_type == EXPENDITURE_AID_TYPE:
        low, high = expenditure_range(standard)
        if amount_fen < low:
            raise ValidationFailed(
                errors={
                    "amount_fen": [
                        f"支出型临时救助不得低于城市低保月标准的 3 倍（{yuan(low)} 元）。"
                    ]
                }
            )
        if amount_fen > high:
            reasons.append(f"超过城市低保月标准的 12 倍（{yuan(high)} 元）")
    if amount_fen > standard.township_approval_cap_fen:
        reasons.append(f"超过乡镇审批权限（{yuan(standard.township_approval_cap_fen)} 元）")
    if reasons:
        return ApprovalRoute("county", "，".join(reasons))
    return ApprovalRoute("township")


def check_emergency_payment(*, standard: AidStandard, amount_fen: int) -> None:
    """先行救助 without prior approval: at most the township's urgent cap (else 422)."""
    if amount_fen <= 0:
        raise ValidationFailed(errors={"amount_fen": ["金额必须大于 0。"]})
    if amount_fen > standard.township_urgent_cap_fen:
        raise ValidationFailed(
            errors={
                "amount_fen": [
                    f"先行救助不得超过乡镇上限 {yuan(standard.township_urgent_cap_fen)} 元；"
                    "更高金额请先审批（approve）。"
                ]
            }
        )


def check_approved_payment(*, approved_fen: int | None, amount_fen: int) -> None:
    """A payment after approval: positive and at most the approved amount (else 422)."""
    if amount_fen <= 0:
        raise ValidationFailed(errors={"amount_fen": ["金额必须大于 0。"]})
    if approved_fen is not None and amount_fen > approved_fen:
        raise ValidationFailed(
            errors={"amount_fen": [f"不得超过审批金额 {yuan(approved_fen)} 元。"]}
        )


def check_paid_at(*, paid_at: dt.datetime, submitted_at: dt.datetime, now: dt.datetime) -> None:
    """``paid_at`` may lie in the past (cash recorded later), not in the future nor before
    the request was made (422)."""
    # A minute's grace for clocks of the duty console that run slightly fast.
    if paid_at > now + dt.timedelta(minutes=1):
        raise ValidationFailed(errors={"paid_at": ["发放时间不能晚于当前时间。"]})
    if paid_at < submitted_at:
        raise ValidationFailed(errors={"paid_at": ["发放时间不能早于求助提交时间。"]})
