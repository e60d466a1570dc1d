"""Supervisors' console in a real browser: the dashboard's figures, the night roster in red,
the ledger download, another county's supervisor, a duty officer's 403 page."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from sqlalchemy import select

from server.audit import AuditEntry
from server.cases.clocks import SHANGHAI
from server.cases.events import add_event
from server.cases.models import Case, CaseEvent
from server.db import utcnow
from server.reports.ledger import HEADERS
from server.roster.models import DutyShift
from server.roster.service import night_of
from server.session import database
from tests import factories as f
from tests.console.conftest import add, sign_in, staff

COUNTY = "371102"  # 东港区
TOWNSHIP = "371102004"  # 秦楼街道
OTHER = "371102001"  # 日照街道


def _cases(app: Any) -> dict[str, list[str]]:
    """秦楼街道: 2 urgent paid in 1 h and 30 h, 1 unpaid past due; 日照街道: 1 paid in 2 h."""
    now = utcnow()
    made: dict[str, list[str]] = {TOWNSHIP: [], OTHER: []}
    with database(app).new_session() as s, s.begin():
        person = f.resident(s, phone="+8613912345678", id_number_masked="371102********1234")
        for township, hours_ago, paid_after in (
            (TOWNSHIP, 50, 1),
            (TOWNSHIP, 50, 30),
            (TOWNSHIP, 30, None),
            (OTHER, 10, 2),
        ):
            created = now - dt.timedelta(hours=hours_ago)
            paid = {}
            if paid_after is not None:
                paid = {"status": "paid", "paid_at": created + dt.timedelta(hours=paid_after)}
            case = f.case(
                s,
                resident_account=person,
                subject_phone=person.phone,
                township=township,
                created_at=created,
                **paid,
            )
            made[township].append(case.case_no)
    return made


def _on_duty_tonight(app: Any, account: Any) -> None:
    start, end = night_of(utcnow())
    add(app, DutyShift(account_id=account.id, starts_at=start, ends_at=end))


def _cells(page: Any, township: str) -> dict[str, str]:
    row = page.locator(f"#figures tr[data-township='{township}']")
    return {
        col: row.locator(f"td[data-col='{col}']").inner_text()
        for col in ("urgent", "paid24", "pct", "overdue")
    }


def test_a_supervisor_sees_two_townships_and_the_county_total(committed_app, live, page):
    _cases(committed_app)
    staff(committed_app, "sup", COUNTY, role="supervisor")
    _on_duty_tonight(committed_app, staff(committed_app, "duty-q", TOWNSHIP))
    sign_in(page, live, "sup")
    page.goto(f"{live}/console/dashboard")
    page.wait_for_selector("text=东港区 · 督导看板")
    assert _cells(page, TOWNSHIP) == {"urgent": "3", "paid24": "1", "pct": "33.3", "overdue": "1"}
    assert _cells(page, OTHER) == {"urgent": "1", "paid24": "1", "pct": "100.0", "overdue": "0"}
    assert _cells(page, "total") == {"urgent": "4", "paid24": "2", "pct": "50.0", "overdue": "1"}
    # Both charts are inline SVG, drawn by the server.
    assert page.locator("svg.chart").count() == 2
    # 日照街道 has nobody on duty tonight: red in the table and named in the alert.
    other_row = page.locator(f"#figures tr[data-township='{OTHER}']")
    assert "unstaffed" in other_row.get_attribute("class")
    assert other_row.locator("td[data-col='duty']").inner_text() == "无人值班"
    colour = other_row.locator("td[data-col='duty']").evaluate(
        "el => getComputedStyle(el).backgroundColor"
    )
    assert colour == "rgb(217, 45, 32)"
    assert "日照街道" in page.locator("#unstaffed").inner_text()
    assert page.locator(f"#figures tr[data-township='{TOWNSHIP}'].unstaffed").count() == 0


def test_the_citys_supervisor_sees_a_row_per_county_and_the_city_total(committed_app, live, page):
    _cases(committed_app)
    staff(committed_app, "city-sup", "3711", role="supervisor")
    sign_in(page, live, "city-sup")
    page.goto(f"{live}/console/dashboard")
    page.wait_for_selector("text=东港区 · 督导看板")  # the first county, as before
    page.select_option("select[name=county]", "3711")
    page.click("form.period button[type=submit]")
    page.wait_for_selector("text=日照市 · 督导看板")
    assert page.locator("#figures thead th").first.inner_text() == "区县"
    assert _cells(page, COUNTY) == {"urgent": "4", "paid24": "2", "pct": "50.0", "overdue": "1"}
    assert _cells(page, "371103") == {"urgent": "0", "paid24": "0", "pct": "—", "overdue": "0"}
    assert _cells(page, "total") == {"urgent": "4", "paid24": "2", "pct": "50.0", "overdue": "1"}
    assert page.locator("#figures tfoot td").first.inner_text() == "全市合计"
    # Nobody is on the roster tonight: every county is red, with its townships counted.
    duty = page.locator(f"#figures tr[data-township='{COUNTY}'] td[data-col='duty']")
    assert duty.inner_text().endswith("个乡镇无人")
    assert "东港区（" in page.locator("#unstaffed").inner_text()
    # A county's supervisor cannot ask for the city.
    staff(committed_app, "sup", COUNTY, role="supervisor")
    sign_in(page, live, "sup")
    assert page.goto(f"{live}/console/dashboard?county=3711").status == 404


def test_the_ledger_downloads_and_opens_with_the_rows_and_masked_ids(committed_app, live, page):
    made = _cases(committed_app)
    admin = staff(committed_app, "city-admin", "3711", role="admin")
    sign_in(page, live, "city-admin")
    page.goto(f"{live}/console/exports?county={COUNTY}")
    page.wait_for_selector("text=东港区 · 台账导出")
    with database(committed_app).new_session() as s:
        submitted = {
            no: f"{at.astimezone(SHANGHAI):%Y-%m}"
            for no, at in s.execute(select(Case.case_no, Case.created_at))
        }
    month = submitted[made[OTHER][0]]  # the newest case's month (Beijing time)
    page.fill("#ledger-form input[name=month]", month)
    with page.expect_download() as info:
        page.click("#ledger-download")
    download = info.value
    assert download.suggested_filename == f"东港区{int(month[:4])}年{int(month[5:])}月案件台账.xlsx"
    book = load_workbook(io.BytesIO(Path(download.path()).read_bytes()), read_only=True)
    rows = list(book.worksheets[0].iter_rows(values_only=True))
    book.close()
    assert rows[0] == HEADERS
    assert {r[0] for r in rows[1:]} == {no for no, m in submitted.items() if m == month}
    for row in rows[1:]:
        line = dict(zip(HEADERS, row, strict=True))
        assert line["身份证号"] == "371102********1234"
        assert line["联系电话"] == "139****5678"  # an administrator's export: masked
    with database(committed_app).new_session() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "ledger.export")).one()
    assert entry.actor_id == admin.id and entry.data["phones"] == "masked"


def test_another_countys_supervisor_sees_none_of_it(committed_app, live, page):
    made = _cases(committed_app)
    staff(committed_app, "sup-lanshan", "371103", role="supervisor")
    sign_in(page, live, "sup-lanshan")
    page.goto(f"{live}/console/dashboard")
    page.wait_for_selector("text=岚山区 · 督导看板")
    assert "秦楼街道" not in page.content()
    for path in (
        f"/console/dashboard?county={COUNTY}",
        f"/console/exports?county={COUNTY}",
        f"/console/exports/ledger?county={COUNTY}&format=csv",
        f"/console/dashboard/export?county={COUNTY}&format=csv",
        f"/console/roster?county={COUNTY}",
        f"/console/triage?county={COUNTY}",
        f"/console/approvals?county={COUNTY}",
    ):
        response = page.goto(f"{live}{path}")
        assert response.status == 404, path
        assert "未找到该区域" in page.content()
        assert not any(no in page.content() for no in made[TOWNSHIP])


def test_every_supervisor_and_admin_page_loads_their_stylesheet(committed_app, live, browser):
    staff(committed_app, "sup", COUNTY, role="supervisor")
    staff(committed_app, "city-admin", "3711", role="admin")
    pages = {
        "sup": ("dashboard", "exports", "roster", "triage", "approvals", "search"),
        "city-admin": ("admin/staff", "admin/standards", "admin/calendar", "admin/sms"),
    }
    for username, paths in pages.items():
        page = browser.new_context(locale="zh-CN").new_page()
        sign_in(page, live, username)
        page.wait_for_selector("nav.sitenav")
        for path in paths:
            assert page.goto(f"{live}/console/{path}").status == 200, path
            assert page.locator("link[href$='supervisor.css']").count() == 1, path
            # The section tabs are styled (a dark bar), not a row of plain links.
            bar = page.locator("nav.sitenav").evaluate("el => getComputedStyle(el).display")
            assert bar == "flex", path
        page.context.close()


def test_a_duty_officer_gets_the_403_page(committed_app, live, page):
    staff(committed_app, "duty-q", TOWNSHIP)
    sign_in(page, live, "duty-q")
    page.wait_for_selector("text=秦楼街道 · 案件队列")
    assert page.locator("nav.sitenav").count() == 0
    for path in (
        "/console/dashboard",
        "/console/exports",
        "/console/exports/ledger",
        "/console/roster",
        "/console/triage",
        "/console/approvals",
        "/console/search",
        "/console/admin/staff",
        "/console/admin/standards",
        "/console/admin/calendar",
        "/console/admin/sms",
    ):
        response = page.goto(f"{live}{path}")
        assert response.status == 403, path
        assert "您的角色不能执行该操作" in page.locator("[role=alert]").inner_text()


def test_assigning_a_triage_case_puts_it_on_the_townships_queue(committed_app, live, browser):
    with database(committed_app).new_session() as s, s.begin():
        case = f.case(
            s, township=None, county=COUNTY, routing_reason="地址“海滨”对应多个乡镇，无法确定。"
        )
        case_no = case.case_no
    staff(committed_app, "sup", COUNTY, role="supervisor")
    staff(committed_app, "duty-q", TOWNSHIP)
    supervisor = browser.new_context(locale="zh-CN").new_page()
    sign_in(supervisor, live, "sup")
    supervisor.goto(f"{live}/console/triage")
    item = supervisor.locator(f"[data-case-no='{case_no}']")
    assert "无法确定" in item.locator(".routing-reason").inner_text()
    item.locator("select[name=township_code]").select_option(TOWNSHIP)
    item.locator("input[name=reason]").fill("地址在秦楼街道辖区")
    item.locator("button[type=submit]").click()
    supervisor.wait_for_selector(f"text=已分派：{case_no}")
    assert supervisor.locator(f"[data-case-no='{case_no}']").count() == 0
    supervisor.context.close()
    officer = browser.new_context(locale="zh-CN").new_page()
    sign_in(officer, live, "duty-q")
    officer.wait_for_selector(f".lane-urgent [data-case-no='{case_no}']")
    officer.context.close()


def test_a_supervisor_approves_a_case_above_the_townships_authority(committed_app, live, page):
    with database(committed_app).new_session() as s, s.begin():
        f.aid_standard(s, county=COUNTY)
        case = f.case(
            s,
            township=TOWNSHIP,
            urgent=False,
            status="pending_county_approval",
            approved_amount_fen=1_500_000,
        )
        add_event(
            s,
            case_id=case.id,
            actor=None,
            action="approve",
            from_status="claimed",
            to_status="pending_county_approval",
            data={"amount_fen": 1_500_000, "reason": "超过乡镇审批权限 12600.00 元"},
        )
        case_no, case_id = case.case_no, case.id
    staff(committed_app, "sup", COUNTY, role="supervisor")
    sign_in(page, live, "sup")
    page.goto(f"{live}/console/approvals")
    item = page.locator(f"[data-case-no='{case_no}']")
    assert item.locator(".amount").inner_text() == "15000.00 元"
    assert "超过乡镇审批权限" in item.locator(".proposal-reason").inner_text()
    assert "3–12 倍" in page.content()
    item.locator(".approve-form input[name=reason]").fill("家庭重大变故，同意一事一议")
    item.locator(".approve-form button").click()
    page.wait_for_selector(f"text={case_no}：审批通过。")
    with database(committed_app).new_session() as s:
        approved = s.get(Case, case_id)
        assert approved.status == "approved" and approved.approved_amount_fen == 1_500_000
        note = s.scalars(
            select(CaseEvent.data).where(
                CaseEvent.case_id == case_id, CaseEvent.to_status == "approved"
            )
        ).one()
    assert note["level"] == "county" and note["note"] == "家庭重大变故，同意一事一议"


def test_a_township_with_nobody_tonight_is_red_until_the_roster_is_fixed(committed_app, live, page):
    staff(committed_app, "sup", COUNTY, role="supervisor")
    _on_duty_tonight(committed_app, staff(committed_app, "duty-q", TOWNSHIP))
    staff(committed_app, "duty-r", OTHER, name="李值班")
    sign_in(page, live, "sup")
    page.goto(f"{live}/console/roster")
    row = page.locator(f"#roster tr[data-township='{OTHER}']")
    assert "unstaffed" in row.get_attribute("class")
    # Red on the page, not only in the markup: the supervisors' stylesheet is loaded.
    first = row.locator("td").first
    assert first.evaluate("el => getComputedStyle(el).backgroundColor") == "rgb(253, 236, 234)"
    warning = row.locator(".no-duty-text")
    assert warning.evaluate("el => getComputedStyle(el).color") == "rgb(180, 35, 24)"
    assert "日照街道" in page.locator("#unstaffed").inner_text()
    assert "unstaffed" not in (
        page.locator(f"#roster tr[data-township='{TOWNSHIP}']").get_attribute("class") or ""
    )
    start, _ = night_of(utcnow())
    form = page.locator("#add-shift")
    form.locator("select[name=account_id]").select_option(label="李值班")
    form.locator("input[name=day]").fill(start.astimezone(SHANGHAI).date().isoformat())
    form.locator("button[type=submit]").click()
    page.wait_for_selector("text=已排班：李值班")
    row = page.locator(f"#roster tr[data-township='{OTHER}']")
    assert "unstaffed" not in (row.get_attribute("class") or "")
    assert "日照街道" not in page.locator("#unstaffed").inner_text()
    assert "李值班" in row.inner_text()
    page.goto(f"{live}/console/dashboard")
    assert page.locator("#figures tr.unstaffed").count() == 10  # the other ten townships


def test_case_search_finds_by_phone_masked(committed_app, live, page):
    made = _cases(committed_app)
    staff(committed_app, "sup", COUNTY, role="supervisor")
    sign_in(page, live, "sup")
    page.goto(f"{live}/console/search")
    page.fill("#search-form input[name=phone]", "13912345678")
    page.click("#search-form button[type=submit]")
    page.wait_for_selector("#results")
    found = {
        r.get_attribute("data-case-no") for r in page.locator("#results tr[data-case-no]").all()
    }
    assert found == set(made[TOWNSHIP] + made[OTHER])
    assert (
        "139****5678" in page.content()
        and "13912345678" not in page.locator("#results").inner_text()
    )
