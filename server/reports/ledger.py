"""The case ledger (台账) of a county for a month: one line per case submitted in the month,
read in chunks and written as .xlsx or CSV (``files``), each export in the audit trail."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import IO, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from server import access, audit
from server.accounts.models import Account
from server.cases.actions import PAY_METHODS
from server.cases.aid_types import AID_TYPES
from server.cases.clocks import SHANGHAI
from server.cases.models import CHANNEL_LABELS, STATUS_LABELS, Case
from server.db import UTC
from server.divisions.service import deployment_city
from server.masking import mask_phone
from server.queues.service import require_division
from server.reports import files
from server.routing.gazetteer import gazetteer
from server.routing.rules import normalize

HEADERS = (
    "案件编号",
    "渠道",
    "救助类型",
    "紧急",
    "乡镇（街道）",
    "村（社区）",
    "状态",
    "提交时间",
    "认领时间",
    "发放金额（元）",
    "发放方式",
    "发放时间",
    "手续截止",
    "手续补齐",
    "办结时间",
    "经办人",
    "联系电话",
    "身份证号",
)
WIDTHS = (30, 10, 16, 6, 14, 16, 12, 17, 17, 12, 10, 17, 17, 17, 17, 12, 14, 20)
# Rows fetched per round trip (a server-side cursor on PostgreSQL).
CHUNK = 2000

_RESIDENT = aliased(Account, name="resident")
_OFFICER = aliased(Account, name="officer")


def month_range(month: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The month containing ``month`` as [start, end) in UTC (Asia/Shanghai months)."""
    first = month.replace(day=1)
    following = (first + dt.timedelta(days=32)).replace(day=1)

    def start(day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(), tzinfo=SHANGHAI).astimezone(UTC)

    return start(first), start(following)


def _statement(county_code: str, since: dt.datetime, until: dt.datetime) -> Any:
    return (
        select(
            Case.case_no,
            Case.channel,
            Case.aid_type,
            Case.urgent,
            Case.township_code,
            Case.address,
            Case.status,
            Case.created_at,
            Case.claimed_at,
            Case.paid_amount_fen,
            Case.pay_method,
            Case.paid_at,
            Case.paperwork_due_at,
            Case.paperwork_done_at,
            Case.closed_at,
            func.coalesce(_OFFICER.name, _OFFICER.username).label("officer"),
            func.coalesce(Case.subject_phone, _RESIDENT.phone).label("phone"),
            _RESIDENT.id_number_masked,
        )
        .join(_RESIDENT, _RESIDENT.id == Case.resident_id)
        .outerjoin(_OFFICER, _OFFICER.id == Case.claimed_by_id)
        .where(Case.county_code == county_code, Case.created_at >= since, Case.created_at < until)
        .order_by(Case.created_at, Case.id)
    )


class _Villages:
    """The village (社区) an address names within its case's township, from the gazetteer's
    names: the case keeps no village code, the ledger shows what the address says."""

    def __init__(self, session: Session) -> None:
        gaz = gazetteer(session, deployment_city())
        by_township: dict[str, list[tuple[str, str]]] = {}
        for alias, places in gaz.aliases.items():
            for place in places:
                if place.level == "village" and place.township_code:
                    by_township.setdefault(place.township_code, []).append((alias, place.name))
        for aliases in by_township.values():
            aliases.sort(key=lambda a: -len(a[0]))  # the longest name first
        self._by_township = by_township

    def find(self, township_code: str | None, address: str | None) -> str:
        if not township_code or not address:
            return ""
        text = normalize(address)
        for alias, name in self._by_township.get(township_code, ()):
            if alias in text:
                return name
        return ""


def _local(value: dt.datetime | None) -> dt.datetime | None:
    # Spreadsheets hold no offsets: the civil-affairs office reads Beijing time.
    return value.astimezone(SHANGHAI).replace(tzinfo=None) if value else None


def ledger_rows(
    session: Session, *, county_code: str, month: dt.date, phones_in_clear: bool
) -> Iterator[tuple[Any, ...]]:
    """The ledger's lines (``HEADERS``' order), read ``CHUNK`` rows at a time. ID numbers are
    always the stored masked form; phones in clear only when ``phones_in_clear``."""
    since, until = month_range(month)
    villages = _Villages(session)
    names = gazetteer(session, deployment_city()).names
    result = session.execute(
        _statement(county_code, since, until).execution_options(yield_per=CHUNK)
    )
    for row in result:
        fen = row.paid_amount_fen
        yield (
            row.case_no,
            CHANNEL_LABELS.get(row.channel, row.channel),
            AID_TYPES.get(row.aid_type, row.aid_type),
            "是" if row.urgent else "否",
            names.get(row.township_code, "") if row.township_code else "（分拣队列）",
            villages.find(row.township_code, row.address),
            STATUS_LABELS.get(row.status, row.status),
            _local(row.created_at),
            _local(row.claimed_at),
            Decimal(fen) / 100 if fen is not None else None,
            PAY_METHODS.get(row.pay_method or "", row.pay_method),
            _local(row.paid_at),
            _local(row.paperwork_due_at),
            _local(row.paperwork_done_at),
            _local(row.closed_at),
            row.officer,
            row.phone if phones_in_clear else mask_phone(row.phone),
            row.id_number_masked,
        )


def export_ledger(
    session: Session, *, actor: Any, county_code: str, month: dt.date, fmt: str
) -> tuple[IO[bytes], str, str]:
    """The county's ledger for the month containing ``month`` as a rewound file in ``fmt``
    (xlsx or csv), its Chinese file name and an ASCII one. Supervisors of the county and
    administrators above it (``access``); the export is audited in the request's
    transaction."""
    access.require_county_read(actor, county_code)
    county_name = require_division(session, county_code, "county")
    clear = access.ledger_phones_in_clear(actor, county_code)
    audit.record(
        session,
        actor=actor,
        action="ledger.export",
        target_type="county",
        target_id=county_code,
        data={"month": f"{month:%Y-%m}", "format": fmt, "phones": "clear" if clear else "masked"},
    )
    title = f"{county_name}{month.year}年{month.month}月案件台账"
    rows = ledger_rows(session, county_code=county_code, month=month, phones_in_clear=clear)
    out = files.table_file(fmt, HEADERS, rows, title=title, widths=WIDTHS)
    return out, title, f"ledger-{county_code}-{month:%Y-%m}"
