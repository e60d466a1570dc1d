"""The case ledger (台账): a county's month as CSV and .xlsx, masked by role, audited."""

from __future__ import annotations

import csv
import datetime as dt
import io

from openpyxl import load_workbook
from sqlalchemy import select

from server.audit import AuditEntry
from server.cases.clocks import SHANGHAI
from server.reports.ledger import HEADERS
from tests import factories
from tests.factories import COUNTY, TOWNSHIP, auth

MONTH = dt.date(2026, 10, 1)


def _at(day: int, hour: int = 10) -> dt.datetime:
    return dt.datetime(2026, 10, day, hour, tzinfo=SHANGHAI)


def _seed(session):
    supervisor = factories.staff(session, role="supervisor", region=COUNTY)
    duty = factories.staff(session, role="duty", region=TOWNSHIP, name="王值班")
    person = factories.resident(
        session, phone="+8613912345678", id_number_masked="371102********1234"
    )
    paid = factories.case(
        session,
        resident_account=person,
        created_at=_at(3),
        status="closed",
        address="日照街道日升社区 3 号楼",
        claimed_by_id=duty.id,
        claimed_at=_at(3, 11),
        paid_amount_fen=150_050,
        pay_method="bank_transfer",
        paid_at=_at(3, 15),
        paperwork_due_at=_at(10, 17),
        paperwork_done_at=_at(7),
        closed_at=_at(8),
    )
    queued = factories.case(session, created_at=_at(31, 23), urgent=False)
    # Outside the month (1 November in Beijing is still 31 October in UTC) or the county.
    factories.case(session, created_at=dt.datetime(2026, 11, 1, 0, 30, tzinfo=SHANGHAI))
    factories.case(session, township="371103001", created_at=_at(5))
    session.flush()
    return supervisor, paid, queued


def _csv(response) -> list[list[str]]:
    assert response.headers["Content-Type"].startswith("text/csv")
    text = response.get_data().decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


def test_a_supervisor_exports_the_month_with_phones_in_clear_and_ids_masked(app, client, session):
    supervisor, paid, queued = _seed(session)
    r = client.get(
        f"/api/v1/counties/{COUNTY}/ledger?month=2026-10&format=csv",
        headers=auth(app, supervisor),
    )
    assert r.status_code == 200, r.get_data(as_text=True)
    assert "attachment" in r.headers["Content-Disposition"]
    rows = _csv(r)
    assert rows[0] == list(HEADERS)
    assert [row[0] for row in rows[1:]] == [paid.case_no, queued.case_no]
    line = dict(zip(HEADERS, rows[1], strict=True))
    assert line["渠道"] == "手机应用"
    assert line["乡镇（街道）"] == "日照街道"
    assert line["村（社区）"] == "日升社区居委会"
    assert line["状态"] == "已办结"
    assert line["提交时间"] == "2026-10-03 10:00"
    assert line["认领时间"] == "2026-10-03 11:00"
    assert line["发放金额（元）"] == "1500.50"
    assert line["发放时间"] == "2026-10-03 15:00"
    assert line["手续截止"] == "2026-10-10 17:00"
    assert line["手续补齐"] == "2026-10-07 10:00"
    assert line["办结时间"] == "2026-10-08 10:00"
    assert line["经办人"] == "王值班"
    assert line["联系电话"] == "+8613912345678"
    assert line["身份证号"] == "371102********1234"
    second = dict(zip(HEADERS, rows[2], strict=True))
    assert second["手续补齐"] == "" and second["发放金额（元）"] == ""
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "ledger.export")).one()
    assert entry.actor_id == supervisor.id and entry.target_id == COUNTY
    assert entry.data == {"month": "2026-10", "format": "csv", "phones": "clear"}


def test_an_administrators_xlsx_has_the_rows_with_phones_masked(app, client, session):
    _, paid, queued = _seed(session)
    admin = factories.staff(session, role="admin", region="3711")
    r = client.get(f"/api/v1/counties/{COUNTY}/ledger?month=2026-10", headers=auth(app, admin))
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/vnd.openxmlformats")
    book = load_workbook(io.BytesIO(r.get_data()))
    sheet = book.worksheets[0]
    assert sheet.title == "东港区2026年10月案件台账"
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == HEADERS
    assert [row[0] for row in rows[1:]] == [paid.case_no, queued.case_no]
    line = dict(zip(HEADERS, rows[1], strict=True))
    assert line["联系电话"] == "139****5678"
    assert line["身份证号"] == "371102********1234"
    assert line["发放金额（元）"] == 1500.5
    assert line["提交时间"] == dt.datetime(2026, 10, 3, 10, 0)


def test_others_get_nothing(app, client, session):
    _seed(session)
    other = factories.staff(session, role="supervisor", region="371103")
    duty = factories.staff(session, role="duty", region=TOWNSHIP)
    url = f"/api/v1/counties/{COUNTY}/ledger?month=2026-10"
    assert client.get(url, headers=auth(app, other)).status_code == 404
    assert client.get(url, headers=auth(app, duty)).status_code == 403
    supervisor = factories.staff(session, role="supervisor", region=COUNTY)
    bad = client.get(f"{url[:-7]}2026-13", headers=auth(app, supervisor))
    assert bad.status_code == 422 and "month" in bad.json["errors"]
    assert (
        session.scalars(select(AuditEntry).where(AuditEntry.action == "ledger.export")).all() == []
    )
