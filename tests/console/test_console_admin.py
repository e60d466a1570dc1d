"""Administrators' console in a real browser: staff accounts, standards, calendar, SMS."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from notifications.models import SmsOutbox
from server.accounts.models import Account
from server.audit import AuditEntry
from server.cases.clocks import SHANGHAI, year_known
from server.cases.money import get_standard
from server.session import database
from tests.console.conftest import add, sign_in, staff

TOWNSHIP = "371102004"


def test_an_admin_resets_a_password_and_the_officer_must_change_it(committed_app, live, browser):
    staff(committed_app, "city-admin", "3711", role="admin")
    officer = staff(committed_app, "duty-q", TOWNSHIP, name="王值班")
    admin = browser.new_context(locale="zh-CN").new_page()
    sign_in(admin, live, "city-admin")
    admin.goto(f"{live}/console/admin/staff")
    row = admin.locator("#staff tr[data-username='duty-q']")
    assert "从未登录" in row.inner_text()
    row.locator("button[data-op=reset]").click()
    shown = admin.locator("#one-time-password code").inner_text()
    assert len(shown) >= 10
    admin.goto(f"{live}/console/admin/staff")  # shown once: gone on the next visit
    assert admin.locator("#one-time-password").count() == 0
    assert "待改密码" in admin.locator("#staff tr[data-username='duty-q']").inner_text()
    admin.context.close()

    page = browser.new_context(locale="zh-CN").new_page()
    sign_in(page, live, "duty-q")  # the old password no longer works
    assert page.locator("[role=alert]").inner_text() == "用户名或密码不正确。"
    sign_in(page, live, "duty-q", shown)
    page.wait_for_url("**/console/password")
    page.fill("input[name=current_password]", shown)
    page.fill("input[name=new_password]", "my-own-password-1")
    page.fill("input[name=confirm_password]", "my-own-password-1")
    page.click("main button[type=submit]")
    page.wait_for_selector("text=密码已修改。")
    with database(committed_app).new_session() as s:
        assert s.get(Account, officer.id).must_change_password is False
        entry = s.scalars(
            select(AuditEntry).where(AuditEntry.action == "account.password_reset")
        ).one()
    assert entry.target_id == str(officer.id) and entry.data == {"via": "console"}
    page.context.close()


def test_an_admin_disables_creates_and_sets_standards(committed_app, live, page):
    staff(committed_app, "city-admin", "3711", role="admin")
    officer = staff(committed_app, "duty-q", TOWNSHIP)
    sign_in(page, live, "city-admin")
    page.goto(f"{live}/console/admin/staff")
    page.locator("#staff tr[data-username='duty-q'] button[data-op=disable]").click()
    page.wait_for_selector("text=已停用 duty-q")
    form = page.locator("#create-staff")
    form.locator("input[name=username]").fill("sup-new")
    form.locator("select[name=role]").select_option("supervisor")
    form.locator("select[name=region_code]").select_option("371102")
    form.locator("input[name=password]").fill("initial-password-1")
    form.locator("button[type=submit]").click()
    page.wait_for_selector("text=已创建账号 sup-new")
    page.goto(f"{live}/console/admin/standards")
    card = page.locator("section[data-county='371102']")
    assert "3–12 倍" in page.content()
    values = ("1100", "880.5", "2000", "13200")
    for field, value in zip(
        (
            "urban_monthly_fen",
            "rural_monthly_fen",
            "township_urgent_cap_fen",
            "township_approval_cap_fen",
        ),
        values,
        strict=True,
    ):
        card.locator(f"input[name={field}]").fill(value)
    card.locator("button[type=submit]").click()
    page.wait_for_selector("text=救助标准已保存。")
    assert "3300.00–13200.00 元" in page.locator("section[data-county='371102']").inner_text()
    with database(committed_app).new_session() as s:
        assert s.get(Account, officer.id).active is False
        created = s.scalars(select(Account).where(Account.username == "sup-new")).one()
        assert created.must_change_password and created.region_code == "371102"
        standard = get_standard(s, "371102")
        assert (standard.urban_monthly_fen, standard.rural_monthly_fen) == (110_000, 88_050)


def test_the_calendar_banner_until_next_years_holidays_are_entered(committed_app, live, page):
    staff(committed_app, "city-admin", "3711", role="admin")
    sign_in(page, live, "city-admin")
    page.goto(f"{live}/console/admin/calendar")
    today = dt.datetime.now(SHANGHAI).date()
    expected = today.month >= 11 and not year_known(today.year + 1)
    banner = page.locator("#calendar-banner")
    assert banner.count() == (1 if expected else 0)
    if not expected:
        return
    assert f"{today.year + 1} 年节假日安排尚未录入" in banner.inner_text()
    page.fill("#calendar-form input[name=day]", f"{today.year + 1}-01-01")
    page.fill("#calendar-form input[name=note]", "元旦")
    page.click("#calendar-form button[type=submit]")
    page.wait_for_selector(f"text=已设置 {today.year + 1}-01-01 为节假日")
    assert page.locator("#calendar-banner").count() == 0


def test_a_failed_sms_is_retried_and_a_template_reworded(committed_app, live, page):
    staff(committed_app, "city-admin", "3711", role="admin")
    failed = SmsOutbox(
        to_phone="+8613912345678",
        template="receipt",
        body="【指尖办】已收到",
        status="failed",
        attempts=8,
        last_error="21211 invalid number",
    )
    add(committed_app, failed)
    sign_in(page, live, "city-admin")
    page.goto(f"{live}/console/admin/sms")
    row = page.locator("#failures tr", has_text="21211")
    assert "139****5678" in row.inner_text()
    row.locator("button[name=retry]").click()
    page.wait_for_selector("text=已重新排队 1 条短信。")
    with database(committed_app).new_session() as s:
        assert s.get(SmsOutbox, failed.id).status == "pending"
        assert s.scalars(select(AuditEntry.action).where(AuditEntry.action == "sms.retry")).one()
