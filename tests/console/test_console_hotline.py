"""Hotline entry and call-back tasks in a real browser: phone first (the caller's open cases
before anything else), an urgent entry pages the township's duty officer, bad input keeps
the form, a call-back task is marked called, a 375 px phone; the console's own 429 page."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from notifications.models import CallbackTask, SmsOutbox
from server.audit import AuditEntry
from server.cases.models import Case, CaseEvent
from server.session import database
from tests import factories as f
from tests.console.conftest import sign_in, staff

TOWNSHIP = "371102004"  # 秦楼街道
OTHER_COUNTY_TOWNSHIP = "371121001"  # 五莲县 洪凝街道
CALLER = "13812345678"
CALLER_E164 = "+8613812345678"


def _caller_case(app: Any, township: str = TOWNSHIP, **fields: Any) -> str:
    with database(app).new_session() as s, s.begin():
        resident = f.resident(s, phone=CALLER_E164)
        return f.case(
            s, resident_account=resident, township=township, subject_phone=CALLER_E164, **fields
        ).case_no


def _look_up(page: Any, base: str, phone: str) -> None:
    page.goto(f"{base}/console/hotline")
    page.fill("input[name=phone]", phone)
    page.click("#look-up")


def test_a_callers_open_case_is_shown_before_the_entry_form(committed_app, live, page):
    staff(committed_app, "op-a", "3711", role="operator")
    case_no = _caller_case(committed_app)
    sign_in(page, live, "op-a")
    page.wait_for_selector("text=热线来电登记")
    _look_up(page, live, CALLER)
    open_cases = page.locator("#open-cases")
    open_cases.wait_for()
    assert "该号码已有 1 件办理中的案件" in open_cases.inner_text()
    assert open_cases.locator(f"[data-case-no='{case_no}']").count() == 1
    # Before anything else: the open case comes first on the page, the form after it.
    above = page.evaluate(
        "document.querySelector('#open-cases').compareDocumentPosition("
        "document.querySelector('#entry')) & Node.DOCUMENT_POSITION_FOLLOWING"
    )
    assert above


def test_only_cases_the_operator_may_see_are_shown(committed_app, live, page):
    staff(committed_app, "op-county", "371102", role="operator")
    elsewhere = _caller_case(committed_app, township=OTHER_COUNTY_TOWNSHIP)
    sign_in(page, live, "op-county")
    _look_up(page, live, CALLER)
    page.wait_for_selector("#no-open-cases")
    assert elsewhere not in page.content()


def test_a_new_callers_urgent_entry_gives_the_case_number_and_pages_the_duty_officer(
    committed_app, live, page
):
    staff(committed_app, "op-a", "3711", role="operator")
    duty = staff(committed_app, "duty-a", TOWNSHIP, phone="+8617000000001")
    with database(committed_app).new_session() as s, s.begin():
        f.on_duty(s, s.merge(duty))
    sign_in(page, live, "op-a")
    _look_up(page, live, "139 0000 1111")
    page.wait_for_selector("#no-open-cases")
    page.check("#urgent")
    page.fill("#address", "秦楼街道海曲东路 18 号")
    # The routing engine's suggestion, before anything is submitted.
    page.wait_for_function(
        "document.querySelector('#route-preview').textContent.includes('分派至秦楼街道')"
    )
    assert "理由" in page.locator("#route-preview").inner_text()
    page.fill("textarea[name=description]", "老人独居，突发疾病")
    page.fill("input[name=name]", "王大爷")
    page.click("#submit-entry")
    page.wait_for_selector("#case-no")
    case_no = page.locator("#case-no").inner_text()
    assert case_no.startswith("JJ")
    assert page.locator("#queue-name").inner_text() == "秦楼街道"
    assert page.locator("#paged").inner_text() == "已短信通知值班人员。"
    with database(committed_app).new_session() as s:
        case = s.scalar(select(Case).where(Case.case_no == case_no))
        assert (case.channel, case.urgent, case.township_code) == ("hotline", True, TOWNSHIP)
        pages = s.scalars(
            select(SmsOutbox.to_phone).where(
                SmsOutbox.case_id == case.id, SmsOutbox.template == "duty_page"
            )
        ).all()
        assert pages == ["+8617000000001"]
    # Reloading the result page enters nothing twice; going back and posting again neither.
    page.go_back()
    page.click("#submit-entry")
    page.wait_for_selector("#case-no")
    assert page.locator("#case-no").inner_text() == case_no
    with database(committed_app).new_session() as s:
        assert s.scalars(select(Case.case_no)).all() == [case_no]


def test_bad_input_shows_the_chinese_message_inline_and_keeps_what_was_typed(
    committed_app, live, page
):
    staff(committed_app, "op-a", "3711", role="operator")
    sign_in(page, live, "op-a")
    _look_up(page, live, CALLER)
    page.wait_for_selector("#entry")
    page.fill("#address", "秦楼街道安泰社区")
    page.fill("textarea[name=description]", "生活困难")
    page.fill("input[name=contact_phone]", "12")
    page.click("#submit-entry")  # not urgent and no aid type; a contact phone that is none
    page.wait_for_selector("[role=alert]")
    assert "提交的信息有误" in page.locator("[role=alert]").inner_text()
    assert "非紧急登记须选择救助类型。" in page.locator("[data-error-for=aid_type]").inner_text()
    assert page.input_value("#address") == "秦楼街道安泰社区"
    assert page.input_value("textarea[name=description]") == "生活困难"
    page.select_option("#aid_type", "medical")
    page.click("#submit-entry")
    page.wait_for_selector("[data-error-for=contact_phone]")
    assert page.input_value("input[name=contact_phone]") == "12"
    with database(committed_app).new_session() as s:
        assert s.scalar(select(Case.id)) is None


def test_a_duty_officer_has_no_hotline_form(committed_app, live, page):
    staff(committed_app, "duty-a", TOWNSHIP)
    sign_in(page, live, "duty-a")
    page.wait_for_selector("text=秦楼街道 · 案件队列")
    response = page.goto(f"{live}/console/hotline")
    assert response.status == 403
    assert "只有热线坐席和网格员可以登记求助。" in page.content()


def test_the_hotline_form_works_on_a_375_px_phone(committed_app, live, browser):
    staff(committed_app, "grid-a", TOWNSHIP, role="grid_worker")
    context = browser.new_context(viewport={"width": 375, "height": 667}, locale="zh-CN")
    try:
        phone = context.new_page()
        sign_in(phone, live, "grid-a")
        phone.wait_for_selector("text=主动发现登记")
        _look_up(phone, live, "13900002222")
        phone.wait_for_selector("#entry")
        assert phone.evaluate("document.documentElement.scrollWidth") <= 375
        box = phone.locator("#submit-entry").bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375
        phone.check("#urgent")
        phone.fill("textarea[name=description]", "路边发现一名受伤务工人员")
        phone.click("#submit-entry")
        phone.wait_for_selector("#case-no")
        assert phone.evaluate("document.documentElement.scrollWidth") <= 375
        # A grid worker's own township is the routing evidence when nothing else is given.
        assert phone.locator("#queue-name").inner_text() == "秦楼街道"
    finally:
        context.close()


def _callback_task(app: Any) -> tuple[int, str]:
    with database(app).new_session() as s, s.begin():
        case = f.case(s, township=TOWNSHIP)
        task = f.callback_task(s, case, phone="+8613900003333", reason="受理短信未送达")
        return task.id, case.case_no


def test_a_call_back_task_is_marked_called_with_a_note(committed_app, live, page):
    staff(committed_app, "duty-a", TOWNSHIP)
    staff(committed_app, "duty-other", "371102001")
    task_id, case_no = _callback_task(committed_app)
    sign_in(page, live, "duty-other")
    page.goto(f"{live}/console/callbacks")
    assert "没有待回访的任务。" in page.content() and case_no not in page.content()
    page.context.clear_cookies()
    sign_in(page, live, "duty-a")
    page.goto(f"{live}/console/callbacks")
    row = page.locator(f"[data-task-id='{task_id}']")
    assert "受理短信未送达" in row.inner_text()
    row.locator("input[name=note]").fill("已告知居民到乡镇领取")
    row.locator("button[value=called]").click()
    page.wait_for_selector(f"text=已记录回访结果：{case_no} 已接通")
    assert page.locator(f"[data-task-id='{task_id}']").count() == 0
    with database(committed_app).new_session() as s:
        task = s.get(CallbackTask, task_id)
        assert task.status == "done" and task.note == "已接通。已告知居民到乡镇领取"
        event = s.scalar(select(CaseEvent).where(CaseEvent.action == "callback_done"))
        assert event is not None and "已告知居民到乡镇领取" in event.text_zh


def test_a_call_back_task_shows_the_phone_masked_and_reveals_it_audited(committed_app, live, page):
    """The list never shows the full number; "显示号码 / 拨打" reads it through the contact
    service (an operator who did not enter the case may: the task is theirs to close)."""
    operator = staff(committed_app, "op-a", "3711", role="operator")
    with database(committed_app).new_session() as s, s.begin():
        person = f.resident(s, phone="+8613900003333")
        case = f.case(s, township=TOWNSHIP, resident_account=person)
        task_id = f.callback_task(s, case, phone=person.phone).id
    sign_in(page, live, "op-a")
    page.goto(f"{live}/console/callbacks")
    row = page.locator(f"[data-task-id='{task_id}']")
    assert "139****3333" in row.inner_text()
    assert "13900003333" not in page.content()
    with database(committed_app).new_session() as s:
        assert s.scalar(select(AuditEntry).where(AuditEntry.action == "case.read_contact")) is None
    row.locator("button.call-button").click()
    tel = page.locator("#tel-phone")
    assert tel.get_attribute("href") == "tel:+8613900003333"
    with database(committed_app).new_session() as s:
        reads = s.scalars(
            select(AuditEntry.actor_id).where(AuditEntry.action == "case.read_contact")
        ).all()
    assert reads == [operator.id]


def test_the_consoles_rate_limit_refusal_is_its_own_page(committed_app):
    committed_app.config["RATELIMIT_STAFF_LOGIN_PER_CLIENT"] = "2/hour"
    client = committed_app.test_client()
    form = client.get("/console/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)[1]
    tried = {"username": "nobody", "password": "wrong-one-1", "csrf_token": token}
    for _ in range(2):
        assert client.post("/console/login", data=tried).status_code == 401
    refused = client.post("/console/login", data=tried)
    assert refused.status_code == 429
    assert refused.mimetype == "text/html" and refused.headers["Retry-After"]
    page = refused.get_data(as_text=True)
    assert "操作过于频繁，请稍后再试。" in page and 'value="nobody"' in page
