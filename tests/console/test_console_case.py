"""The case page in a real browser: a resident's tap worked from the live queue to closing
(claim, reveal the phone, pay in yuan, documents, close) with its SMS, the actions offered by
the API's rules, refusals in Chinese with the typed values kept, region scope, CSRF, a phone."""

from __future__ import annotations

import time
import uuid
from typing import Any

import requests
from sqlalchemy import select

from notifications.models import SmsOutbox
from server.audit import AuditEntry
from server.cases.models import Case
from server.documents.models import CaseDocument
from server.session import database
from tests import factories as f
from tests import files
from tests.console.conftest import add, sign_in, staff

TOWNSHIP = "371102004"  # 秦楼街道
OTHER = "371102001"  # 日照街道
RESIDENT_PHONE = "+8613812340001"


def _standards(app: Any) -> None:
    with database(app).new_session() as s, s.begin():
        f.aid_standard(s, county=TOWNSHIP[:6])


def _case(app: Any, township: str = TOWNSHIP, **fields: Any) -> Case:
    with database(app).new_session() as s, s.begin():
        case = f.case(s, township=township, **fields)
        s.expunge(case)
        return case


def _stored(app: Any, case_id: Any) -> Case:
    with database(app).new_session() as s:
        case = s.get(Case, case_id)
        s.expunge(case)
        return case


def _open_case(page: Any, base: str, case: Case) -> None:
    page.goto(f"{base}/console/cases/{case.id}")
    page.wait_for_selector(f"h1 >> text={case.case_no}")


def _my_claimed_case(app: Any, base: str, page: Any, **fields: Any) -> Case:
    """An urgent case claimed by duty officer ``duty-a``, signed in on its page."""
    duty = staff(app, "duty-a", TOWNSHIP)
    case = _case(app, status="claimed", claimed_by_id=duty.id, **fields)
    sign_in(page, base, "duty-a")
    page.wait_for_selector("text=秦楼街道 · 案件队列")
    _open_case(page, base, case)
    return case


def test_a_tap_is_worked_from_the_live_queue_to_closed(committed_app, live, page, tmp_path):
    duty = staff(committed_app, "duty-a", TOWNSHIP, phone="+8617000000004")
    resident = f.Account(role="resident", phone=RESIDENT_PHONE)
    add(committed_app, resident)
    _standards(committed_app)
    sign_in(page, live, "duty-a")
    page.wait_for_selector("text=队列中没有待办案件。")
    page.evaluate("window.__notReloaded = true")

    resp = requests.post(
        f"{live}/api/v1/urgent-requests",
        json={"township_code": TOWNSHIP, "description": "老人摔伤，无钱就医"},
        headers={**f.auth(committed_app, resident), "Idempotency-Key": "case-page-tap-1"},
        timeout=10,
    )
    assert resp.status_code == 201, resp.text
    tapped = time.monotonic()
    case_no, case_id = resp.json()["case_no"], uuid.UUID(resp.json()["id"])
    page.locator(f".lane-urgent [data-case-no='{case_no}']").wait_for(timeout=2000)
    assert time.monotonic() - tapped < 2.0
    assert page.evaluate("window.__notReloaded") is True

    page.click("#claim-next")
    page.wait_for_selector(f"text=已认领：{case_no}")
    page.click(f"[data-case-no='{case_no}'] a.case-no")  # "my cases" links to the case page
    page.wait_for_url(f"**/console/cases/{case_id}")
    assert page.locator("#case-status").inner_text() == "办理中"
    assert "距 24 小时发放时限" in page.locator(".case-clocks").inner_text()
    assert "按提交的乡镇（街道）代码分派至秦楼街道" in page.content()
    assert RESIDENT_PHONE not in page.content()  # masked until asked for

    page.click("#reveal-phone")
    tel = page.locator("#tel-phone")
    assert tel.inner_text() == RESIDENT_PHONE
    assert tel.get_attribute("href") == f"tel:{RESIDENT_PHONE}"
    with database(committed_app).new_session() as s:
        audited = s.scalars(
            select(AuditEntry.actor_id).where(
                AuditEntry.action == "case.read_contact", AuditEntry.target_id == str(case_id)
            )
        ).all()
    assert audited == [duty.id]

    pay = page.locator("#action-pay")
    assert pay.get_attribute("open") is not None  # what an urgent claimed case waits for
    pay.locator("input[name=amount_yuan]").fill("500")
    pay.locator("select[name=method]").select_option("bank_transfer")
    pay.locator("input[name=reference]").fill("ZZ-2026-001")
    assert pay.locator("input[name=paid_at]").input_value()  # now, in Beijing time
    pay.locator("button[type=submit]").click()
    page.wait_for_selector("text=已完成：发放救助金")
    stored = _stored(committed_app, case_id)
    assert (stored.status, stored.paid_amount_fen, stored.pay_method) == (
        "paid",
        50000,
        "bank_transfer",
    )
    assert "距补齐手续时限" in page.locator(".case-clocks").inner_text()
    missing = page.locator("#missing").inner_text()
    assert "办结前还缺：救助申请书、困难情况证明、救助金发放签收单" in missing

    # Closing before the paperwork is refused with the API's words; the note typed stays.
    close = page.locator("#action-close")
    assert close.get_attribute("open") is not None  # what a paid case waits for
    close.locator("textarea[name=note]").fill("已电话回访")
    close.locator("button[type=submit]").click()
    alert = page.locator("#action-close [role=alert]")
    assert "材料未齐，缺少：救助申请书、困难情况证明、救助金发放签收单" in alert.inner_text()
    assert page.locator("#action-close textarea[name=note]").input_value() == "已电话回访"
    assert _stored(committed_app, case_id).status == "paid"

    photo = tmp_path / "receipt.jpg"
    photo.write_bytes(files.jpeg_with_gps())
    scan = tmp_path / "application.pdf"
    scan.write_bytes(files.pdf())
    for kind, upload in (
        ("application", scan),
        ("hardship_proof", scan),
        ("payment_receipt", photo),
    ):
        form = page.locator("#action-add_document")
        form.locator("select[name=kind]").select_option(kind)
        form.locator("input[name=file]").set_input_files(str(upload))
        form.locator("button[type=submit]").click()
        page.wait_for_selector("text=已添加材料")
    assert page.locator("#missing").inner_text() == "办结所需材料已齐全。"
    assert page.locator("img.thumb").count() == 1  # the photo's thumbnail

    close = page.locator("#action-close")
    close.locator("button[type=submit]").click()
    page.wait_for_selector("text=已完成：办结")
    assert page.locator("#case-status").inner_text() == "已办结"
    assert page.locator("#actions details").count() == 0
    with database(committed_app).new_session() as s:
        assert _stored(committed_app, case_id).status == "closed"
        kinds = s.scalars(select(CaseDocument.kind).where(CaseDocument.case_id == stored.id))
        assert sorted(kinds) == ["application", "hardship_proof", "payment_receipt"]
        sms = s.scalars(
            select(SmsOutbox.template)
            .where(SmsOutbox.to_phone == RESIDENT_PHONE)
            .order_by(SmsOutbox.id)
        ).all()
    assert sms == ["urgent_receipt", "claimed", "paid", "paperwork_due", "closed"]


def test_a_refused_action_shows_the_chinese_reason_and_keeps_what_was_typed(
    committed_app, live, page
):
    _standards(committed_app)  # the township may pay at most 2000 元 before approval
    case = _my_claimed_case(committed_app, live, page)
    pay = page.locator("#action-pay")
    pay.locator("input[name=amount_yuan]").fill("99999")
    pay.locator("select[name=method]").select_option("cash")
    pay.locator("input[name=reference]").fill("XJ-7")
    pay.locator("button[type=submit]").click()
    pay = page.locator("#action-pay")
    pay.locator("[role=alert]").wait_for()
    assert "提交的信息有误" in pay.locator("[role=alert]").inner_text()
    assert "2000.00" in pay.locator(".field-error").inner_text()
    assert pay.locator("input[name=amount_yuan]").input_value() == "99999"
    assert pay.locator("select[name=method]").input_value() == "cash"
    assert pay.locator("input[name=reference]").input_value() == "XJ-7"
    stored = _stored(committed_app, case.id)
    assert (stored.status, stored.paid_amount_fen) == ("claimed", None)

    pay.locator("input[name=amount_yuan]").fill("12.345")  # not an amount in yuan
    pay.locator("button[type=submit]").click()
    assert "最多两位小数" in page.locator("#action-pay .field-error").inner_text()
    assert page.locator("#action-pay input[name=amount_yuan]").input_value() == "12.345"


def test_only_the_actions_the_api_allows_now_are_offered(committed_app, live, page):
    duty = staff(committed_app, "duty-a", TOWNSHIP)
    other_duty = staff(committed_app, "duty-b", TOWNSHIP)
    queued = _case(committed_app)
    held_by_other = _case(committed_app, status="claimed", claimed_by_id=other_duty.id)
    resident = f.Account(role="resident", phone=RESIDENT_PHONE, name="张三丰")
    add(committed_app, resident)
    paid = _case(committed_app, status="paid", claimed_by_id=duty.id, resident_id=resident.id)
    add(committed_app, CaseDocument(case_id=paid.id, kind="id_proof", added_by_id=resident.id))
    with database(committed_app).new_session() as s, s.begin():
        f.callback_task(s, paid, phone=RESIDENT_PHONE, reason="发放通知短信未送达")
    sign_in(page, live, "duty-a")
    page.wait_for_selector("text=秦楼街道 · 案件队列")

    def offered(case: Case) -> list[str]:
        _open_case(page, live, case)
        return page.eval_on_selector_all(
            "#actions details", "els => els.map(e => e.id.replace('action-', ''))"
        )

    assert offered(queued) == ["transfer", "refer"]  # claim it first to pay or approve
    assert offered(held_by_other) == []
    assert "已由其他工作人员认领办理" in page.locator("#actions").inner_text()
    assert page.locator("#action-add_document").count() == 0
    assert offered(paid) == ["close", "note"]
    assert page.locator("#action-add_document").count() == 1
    documents = page.locator("#documents .docs").inner_text()
    assert "身份证明" in documents and "申请人" in documents
    assert "张三丰" not in page.content() and "张**" in page.content()  # masked everywhere
    tasks = page.locator(".tasks").inner_text()
    assert "待回访" in tasks and "发放通知短信未送达" in tasks and "138****0001" in tasks
    assert RESIDENT_PHONE not in page.content()
    page.click("text=到“回访任务”记录回访结果")
    page.wait_for_selector(f"[data-case-no='{paid.case_no}'] a.case-no")  # and back again


def test_a_transfer_picks_the_township_from_the_list(committed_app, live, page):
    case = _my_claimed_case(committed_app, live, page)
    form = page.locator("#action-transfer")
    form.locator("summary").click()
    form.locator("select[name=township_code]").select_option(label="日照街道")
    form.locator("textarea[name=reason]").fill("求助人现居日照街道")
    form.locator("button[type=submit]").click()
    # Out of this officer's township now: back to the queue, which no longer lists it.
    page.wait_for_selector(f"text=已完成：转办其他乡镇（{case.case_no}）")
    assert page.locator(f"[data-case-no='{case.case_no}']").count() == 0
    stored = _stored(committed_app, case.id)
    assert (stored.township_code, stored.status, stored.claimed_by_id) == (OTHER, "queued", None)


def test_a_duty_officer_of_another_township_sees_none_of_it(committed_app, live, page):
    staff(committed_app, "duty-other", OTHER)
    case = _case(committed_app, township=TOWNSHIP)
    sign_in(page, live, "duty-other")
    page.wait_for_selector("text=日照街道 · 案件队列")
    assert case.case_no not in page.content()
    for url in (f"/console/cases/{case.id}", "/console/cases/not-a-case-id"):
        answer = page.goto(f"{live}{url}")
        assert answer.status == 404
        assert "未找到该案件" in page.locator("[role=alert]").inner_text()
        assert case.case_no not in page.content()
    # A forged post with a valid token from this officer's own page changes nothing.
    token = page.locator("input[name=csrf_token]").first.input_value()
    for path, form in (
        ("actions", {"action": "transfer", "township_code": OTHER, "reason": "x"}),
        ("contact", {}),
        ("documents", {"kind": "application"}),
    ):
        answer = page.request.post(
            f"{live}/console/cases/{case.id}/{path}", form={"csrf_token": token, **form}
        )
        assert answer.status == 404 and "未找到该案件" in answer.text()
    with database(committed_app).new_session() as s:
        assert s.scalar(select(Case.township_code).where(Case.id == case.id)) == TOWNSHIP
        assert s.scalar(select(CaseDocument.id).where(CaseDocument.case_id == case.id)) is None
        assert not s.scalars(
            select(AuditEntry.action).where(AuditEntry.target_id == str(case.id))
        ).all()


def test_a_case_form_post_without_the_csrf_token_is_refused(committed_app, live, page):
    case = _my_claimed_case(committed_app, live, page)
    note = page.locator("#action-note")
    note.locator("summary").click()
    note.locator("textarea[name=message]").fill("没有令牌的记录")
    page.evaluate("document.querySelector('#action-note form').csrf_token.remove()")
    note.locator("button[type=submit]").click()
    assert "缺少安全令牌" in page.locator("[role=alert]").inner_text()
    with database(committed_app).new_session() as s:
        events = s.scalars(select(AuditEntry.action).where(AuditEntry.target_id == str(case.id)))
        assert "case.note" not in list(events)


def test_the_case_page_works_on_a_375_px_phone(committed_app, live, browser):
    duty = staff(committed_app, "duty-a", TOWNSHIP)
    case = _case(
        committed_app,
        status="claimed",
        claimed_by_id=duty.id,
        address="秦楼街道安泰社区 5 号楼 2 单元 301 室（靠近菜市场东门，电话联系不上请敲门）",
        description="务工受伤，无法支付医药费" * 6,
    )
    context = browser.new_context(viewport={"width": 375, "height": 667}, locale="zh-CN")
    try:
        phone = context.new_page()
        sign_in(phone, live, "duty-a")
        phone.wait_for_selector("text=秦楼街道 · 案件队列")
        _open_case(phone, live, case)
        for details in phone.locator("#case details").all():
            details.evaluate("d => d.open = true")  # every form unfolded at once
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 375  # nothing wider than the screen: no sideways scrolling
        for selector in ("#reveal-phone", "#action-pay button[type=submit]"):
            box = phone.locator(selector).bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375
        note = phone.locator("#action-note")
        note.locator("textarea[name=message]").fill("已上门核实")
        note.locator("button[type=submit]").click()
        phone.wait_for_selector("text=已完成：工作记录")
        assert "已上门核实" in phone.locator(".events").inner_text()
    finally:
        context.close()
