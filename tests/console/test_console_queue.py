"""The console in a real browser: sign-in, CSRF, idle timeout, forced password change, the
live queue (a resident's tap appears without reload), claim, region scope, a 375 px phone."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import requests
from sqlalchemy import select

from server.accounts.models import Account
from server.cases.models import Case
from server.console.queue import LANE_ROWS
from server.session import database
from tests import factories as f
from tests.console.conftest import PASSWORD, add, sign_in, staff

TOWNSHIP = "371102004"  # 秦楼街道
OTHER = "371102001"  # 日照街道


def _case(app: Any, township: str = TOWNSHIP, **fields: Any) -> str:
    with database(app).new_session() as s, s.begin():
        return f.case(s, township=township, **fields).case_no


def test_bad_password_is_refused_in_chinese_then_the_right_one_opens_the_queue(
    committed_app, live, page
):
    staff(committed_app, "duty-a", TOWNSHIP)
    sign_in(page, live, "duty-a", "not-the-password")
    assert page.locator("[role=alert]").inner_text() == "用户名或密码不正确。"
    assert page.url.endswith("/console/login")
    sign_in(page, live, "duty-a")
    page.wait_for_selector("text=秦楼街道 · 案件队列")
    cookie = next(c for c in page.context.cookies() if c["name"] == "aidline_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/console"
    assert not cookie["secure"]  # plain HTTP here; over HTTPS it is Secure (test_console_auth)


def test_a_form_post_without_the_csrf_token_is_refused(committed_app, live, page):
    staff(committed_app, "duty-a", TOWNSHIP)
    case_no = _case(committed_app)
    sign_in(page, live, "duty-a")
    page.wait_for_selector(f"text={case_no}")
    page.evaluate("document.querySelector('#claim-next').form.csrf_token.remove()")
    page.click("#claim-next")
    assert "缺少安全令牌" in page.locator("[role=alert]").inner_text()
    with database(committed_app).new_session() as s:
        assert s.scalar(select(Case.status).where(Case.case_no == case_no)) == "queued"


def test_an_idle_session_is_signed_out_although_the_page_polls(committed_app, live, page):
    committed_app.config["CONSOLE_IDLE_MINUTES"] = 2 / 60
    staff(committed_app, "duty-a", TOWNSHIP)
    sign_in(page, live, "duty-a")
    page.wait_for_selector("text=秦楼街道 · 案件队列")
    # The page's own polls are no activity: it is sent to sign-in by itself.
    page.wait_for_url("**/console/login**", timeout=6000)
    page.goto(f"{live}/console/")
    assert page.url.startswith(f"{live}/console/login")
    assert "长时间未操作" in page.content() or page.locator("form").count() == 1


def test_an_admin_set_password_must_be_changed_at_first_sign_in(committed_app, live, page):
    account = staff(committed_app, "duty-new", TOWNSHIP, must_change_password=True)
    sign_in(page, live, "duty-new")
    page.wait_for_url("**/console/password")
    page.goto(f"{live}/console/")
    assert page.url.endswith("/console/password")  # nothing else opens before the change
    page.fill("input[name=current_password]", PASSWORD)
    page.fill("input[name=new_password]", "my-own-password-1")
    page.fill("input[name=confirm_password]", "my-own-password-1")
    page.click("main button[type=submit]")
    page.wait_for_selector("text=密码已修改。")
    assert page.url.startswith(f"{live}/console/")
    with database(committed_app).new_session() as s:
        assert s.get(Account, account.id).must_change_password is False


def test_a_residents_tap_appears_on_the_open_queue_within_two_seconds(committed_app, live, page):
    staff(committed_app, "duty-a", TOWNSHIP)
    resident = f.Account(role="resident", phone="+8613812340001")
    add(committed_app, resident)
    sign_in(page, live, "duty-a")
    page.wait_for_selector("text=队列中没有待办案件。")
    page.evaluate("window.__notReloaded = true")
    resp = requests.post(
        f"{live}/api/v1/urgent-requests",
        json={"township_code": TOWNSHIP},
        headers={**f.auth(committed_app, resident), "Idempotency-Key": "console-tap-1"},
        timeout=10,
    )
    assert resp.status_code == 201, resp.text
    tapped = time.monotonic()
    case_no = resp.json()["case_no"]
    row = page.locator(f".lane-urgent [data-case-no='{case_no}']")
    row.wait_for(timeout=2000)
    assert time.monotonic() - tapped < 2.0
    assert page.evaluate("window.__notReloaded") is True
    assert page.title().startswith("(1) ")
    assert "距认领时限" in row.inner_text() and "距 24 小时发放时限" in row.inner_text()


def test_claim_from_the_list_takes_the_next_case_urgent_first(committed_app, live, page):
    duty = staff(committed_app, "duty-a", TOWNSHIP)
    application = _case(committed_app, urgent=False)
    urgent = _case(committed_app, urgent=True)
    sign_in(page, live, "duty-a")
    page.click("#claim-next")
    page.wait_for_selector(f"text=已认领：{urgent}")
    assert page.locator("[data-case-no]").count() == 1  # "my cases"
    assert page.locator(f"[data-case-no='{urgent}'] .badge-mine").count() == 1
    with database(committed_app).new_session() as s:
        held = dict(s.execute(select(Case.case_no, Case.claimed_by_id)).all())
    assert held == {urgent: duty.id, application: None}


def test_a_duty_officer_of_another_township_sees_none_of_it(committed_app, live, page):
    staff(committed_app, "duty-other", OTHER)
    case_no = _case(committed_app, township=TOWNSHIP)
    sign_in(page, live, "duty-other")
    page.wait_for_selector("text=日照街道 · 案件队列")
    assert case_no not in page.content()
    page.goto(f"{live}/console/?township={TOWNSHIP}")
    assert "未找到该区域" in page.content() and case_no not in page.content()
    live_json = page.request.get(f"{live}/console/live?township={TOWNSHIP}")
    assert live_json.status == 404
    with database(committed_app).new_session() as s:
        assert s.scalar(select(Case.claimed_by_id).where(Case.case_no == case_no)) is None


def test_the_queue_works_on_a_375_px_phone(committed_app, live, browser):
    staff(committed_app, "duty-a", TOWNSHIP)
    case_no = _case(committed_app)
    context = browser.new_context(viewport={"width": 375, "height": 667}, locale="zh-CN")
    try:
        phone = context.new_page()
        sign_in(phone, live, "duty-a")
        row = phone.locator(f"[data-case-no='{case_no}']")
        row.wait_for()
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 375  # nothing wider than the screen: no sideways scrolling
        box = phone.locator("#claim-next").bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375
        phone.click("#claim-next")
        phone.wait_for_selector(f"text=已认领：{case_no}")
    finally:
        context.close()


def test_a_disabled_accounts_open_session_stops_at_once(committed_app, live, page):
    account = staff(committed_app, "duty-a", TOWNSHIP)
    sign_in(page, live, "duty-a")
    page.wait_for_selector("text=秦楼街道 · 案件队列")
    with database(committed_app).new_session() as s, s.begin():
        s.get(Account, account.id).active = False
    page.goto(f"{live}/console/")
    assert page.url.startswith(f"{live}/console/login")
    assert "登录已失效" in page.content()


def test_each_lane_shows_its_first_rows_earliest_deadline_first_and_pages_the_rest(
    committed_app, live, page
):
    staff(committed_app, "duty-a", TOWNSHIP)
    start = time.time()
    with database(committed_app).new_session() as s, s.begin():
        person = f.resident(s)
        # Created oldest first, so each lane's claim order is the order made here.
        urgent = [
            f.case(
                s,
                township=TOWNSHIP,
                resident_account=person,
                urgent=True,
                created_at=_ago(start, 300 - 10 * k),
            ).case_no
            for k in range(LANE_ROWS + 3)
        ]
        other = [
            f.case(s, township=TOWNSHIP, resident_account=person, urgent=False).case_no
            for _ in range(2)
        ]
    sign_in(page, live, "duty-a")
    shown = page.locator(".lane-urgent [data-case-no]")
    assert [shown.nth(k).get_attribute("data-case-no") for k in range(shown.count())] == urgent[
        :LANE_ROWS
    ]
    assert page.locator(".lane-urgent-title").inner_text() == f"紧急求助 {len(urgent)} 件"
    assert page.locator(".lane:not(.lane-urgent) [data-case-no]").count() == len(other)
    page.click(".lane-more a.more")
    rest = page.locator(".lane-urgent [data-case-no]")
    assert [rest.nth(k).get_attribute("data-case-no") for k in range(rest.count())] == urgent[
        LANE_ROWS:
    ]
    assert page.locator(".lane:not(.lane-urgent)").count() == 0  # the urgent lane alone
    assert "距认领时限" in rest.first.inner_text()
    # A page number that is no page number is the first page, never an error.
    for bad in ("9" * 5000, "-1", "²", "abc"):
        assert page.goto(f"{live}/console/?urgent=1&page={bad}").status == 200
        assert page.locator(".lane-urgent [data-case-no]").count() == LANE_ROWS


def _ago(now: float, seconds: int) -> Any:
    return dt.datetime.fromtimestamp(now, dt.UTC) - dt.timedelta(seconds=seconds)
