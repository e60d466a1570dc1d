"""The case page's forms given bad input (no browser): every refusal is a 4xx page in Chinese
that names what is wrong, never a 500, and writes nothing."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from sqlalchemy import func, select

from server.audit import AuditEntry
from server.cases.models import CaseEvent
from server.documents.models import CaseDocument
from tests import factories as f
from tests import files

TOWNSHIP = "371102004"  # 秦楼街道
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def _signed_in(client: Any, username: str) -> None:
    token = _TOKEN.search(client.get("/console/login").get_data(as_text=True))[1]
    answer = client.post(
        "/console/login",
        data={"csrf_token": token, "username": username, "password": "correct horse battery"},
    )
    assert answer.status_code == 302, answer.get_data(as_text=True)


@pytest.fixture
def worked(client, session):
    """A duty officer signed in, holding an urgent case; the page's CSRF token."""
    duty = f.staff(session, role="duty", region=TOWNSHIP)
    f.aid_standard(session, county=TOWNSHIP[:6])
    case = f.case(session, township=TOWNSHIP, status="claimed", claimed_by_id=duty.id)
    _signed_in(client, duty.username)
    page = client.get(f"/console/cases/{case.id}")
    assert page.status_code == 200
    return case, _TOKEN.search(page.get_data(as_text=True))[1]


PAY = {"action": "pay", "amount_yuan": "500", "method": "cash"}


@pytest.mark.parametrize(
    ("form", "status", "says"),
    [
        ({"action": "fly"}, 422, "请选择要执行的操作"),
        ({}, 422, "请选择要执行的操作"),
        ({**PAY, "amount_yuan": "1e9999"}, 422, "以元为单位的金额"),
        ({**PAY, "amount_yuan": "-5"}, 422, "以元为单位的金额"),
        ({**PAY, "amount_yuan": "500元"}, 422, "以元为单位的金额"),
        ({**PAY, "amount_yuan": "99999999999"}, 422, "小于或等于 1000000000"),
        ({**PAY, "method": "gold"}, 422, "发放方式"),
        ({**PAY, "paid_at": "yesterday"}, 422, "日期时间"),
        ({**PAY, "paid_at": "2099-01-01T08:00"}, 422, "不能晚于当前时间"),
        ({**PAY, "paid_at": "1999-01-01T08:00"}, 422, "2000-01-01"),
        ({"action": "pay", "method": "cash"}, 422, "必填"),
        ({"action": "transfer", "township_code": "123", "reason": "x"}, 422, "9 位"),
        ({"action": "transfer", "township_code": "110101001", "reason": "x"}, 422, "日照市"),
        ({"action": "refer", "department": "nasa", "reason": "x"}, 422, "转往县级部门"),
        ({"action": "note", "message": "记" * 201}, 422, "200"),
        ({"action": "approve", "note": "同意"}, 422, "必填"),
        ({"action": "withdraw"}, 403, "您的角色不能执行该操作"),
        ({"action": "close"}, 409, "当前状态不能办结"),
    ],
)
def test_a_bad_action_form_is_refused_in_chinese_and_writes_nothing(
    client, session, worked, form, status, says
):
    case, token = worked
    before = session.scalar(select(func.count()).select_from(CaseEvent))
    answer = client.post(f"/console/cases/{case.id}/actions", data={"csrf_token": token, **form})
    page = answer.get_data(as_text=True)
    assert answer.status_code == status, page
    assert answer.mimetype == "text/html"
    assert says in page
    assert session.scalar(select(func.count()).select_from(CaseEvent)) == before
    session.refresh(case)
    assert (case.status, case.paid_amount_fen) == ("claimed", None)


@pytest.mark.parametrize(
    ("form", "says"),
    [
        ({}, "请选择材料类型"),
        ({"kind": "selfie", "file": (io.BytesIO(files.pdf()), "a.pdf")}, "请选择材料类型"),
        ({"kind": "application"}, "请选择要上传的文件"),
        ({"kind": "application", "file": (io.BytesIO(files.TEXT), "a.jpg")}, "仅接受"),
        ({"kind": "application", "file": (io.BytesIO(files.truncated_jpeg()), "a.jpg")}, "损坏"),
    ],
)
def test_a_bad_document_form_is_refused_in_chinese(client, session, worked, form, says):
    case, token = worked
    answer = client.post(
        f"/console/cases/{case.id}/documents",
        data={"csrf_token": token, **form},
        content_type="multipart/form-data",
    )
    assert answer.status_code == 422
    assert says in answer.get_data(as_text=True)
    assert session.scalar(select(CaseDocument.id).where(CaseDocument.case_id == case.id)) is None


def test_a_refused_page_keeps_no_audit_entry_of_its_own_read(client, session, worked):
    case, token = worked
    reads = select(func.count()).where(AuditEntry.target_id == str(case.id))
    before = session.scalar(reads)
    answer = client.post(
        f"/console/cases/{case.id}/actions", data={"csrf_token": token, "action": "withdraw"}
    )
    assert answer.status_code == 403
    assert session.scalar(reads) == before  # the refused request rolled back as a whole
