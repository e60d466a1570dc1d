"""Inbound SMS from feature phones, end to end: signed webhook -> outbox -> worker -> Twilio."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from notifications.models import SmsInbound, SmsOutbox
from server.accounts.models import Account
from server.cases.models import Case
from server.sms.inbound import classify
from tests import factories
from tests.fake_twilio import AUTH_TOKEN, PUBLIC_BASE_URL, sign, twilio_config
from tests.sms_helpers import TOWNSHIP, make_case, worker

INBOUND_PATH = "/api/v1/webhooks/twilio/inbound"
_sid = iter(range(1, 10_000))


def text_us(client, body, *, sender="+8613955556666", sid=None, token=AUTH_TOKEN, signed=True):
    client.application.config.update(TWILIO_AUTH_TOKEN=AUTH_TOKEN, PUBLIC_BASE_URL=PUBLIC_BASE_URL)
    form = {
        "MessageSid": sid or f"SM{next(_sid):032d}",
        "From": sender,
        "To": "+15005550006",
        "Body": body,
        "NumMedia": "0",
    }
    headers = (
        {"X-Twilio-Signature": sign(PUBLIC_BASE_URL + INBOUND_PATH, form, token)} if signed else {}
    )
    return client.post(INBOUND_PATH, data=form, headers=headers)


def _outbox(session, to):
    return session.scalars(
        select(SmsOutbox).where(SmsOutbox.to_phone == to).order_by(SmsOutbox.id)
    ).all()


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("查询", "query"),
        ("查询 我的申请", "query"),
        ("JJ…1123-0007", "case_no"),
        ("JJ02001-1123-0007", "case_no"),
        ("JJ3711020011123-0007", "case_no"),
        ("1123-0007", "case_no"),
        ("求助", "help"),
        ("救助，我在村口摔倒了", "help"),
        ("我要求助", "help"),
        ("你好", "unknown"),
        ("", "unknown"),
    ],
)
def test_classify(text, intent) -> None:
    assert classify(text)[0] == intent


def test_help_creates_urgent_case_routed_by_residence_and_pages_duty(
    app, client, session, fake_twilio
):
    elder = factories.resident(session, phone="+8613955556666", residence_township_code=TOWNSHIP)
    duty = factories.staff(session, role="duty", region=TOWNSHIP, phone="+8613900000001")
    factories.on_duty(session, duty)
    session.commit()

    resp = text_us(client, "求助 老伴摔倒了")
    assert resp.status_code == 200 and resp.mimetype == "text/xml"
    assert resp.get_data(as_text=True).endswith("<Response></Response>")

    case = session.scalar(select(Case).where(Case.resident_id == elder.id))
    assert case.urgent and case.channel == "sms" and case.township_code == TOWNSHIP
    assert case.description == "老伴摔倒了"
    inbound = session.scalar(select(SmsInbound))
    assert inbound.intent == "help" and inbound.case_id == case.id

    worker(app, **twilio_config(fake_twilio)).run_once()
    sent = {r.form["To"]: r.form["Body"] for r in fake_twilio.requests}
    assert "已收到" in sent["+8613955556666"]  # urgent receipt to the elder
    assert "紧急求助" in sent["+8613900000001"]  # the duty page, exactly as a tap

    # Texting again while the request is open: no second case, a status reply instead.
    text_us(client, "救助")
    assert session.scalar(select(Case.id).where(Case.resident_id == elder.id).offset(1)) is None
    replies = [r.template for r in _outbox(session, "+8613955556666")]
    assert replies == ["urgent_receipt", "inbound_status"]
    assert "正在办理" in _outbox(session, "+8613955556666")[-1].body


def test_help_from_unknown_number_goes_to_triage(app, client, session):
    resp = text_us(client, "求助", sender="13811112222")
    assert resp.status_code == 200
    account = session.scalar(select(Account).where(Account.phone == "+8613811112222"))
    assert account is not None and account.role == "resident"
    case = session.scalar(select(Case).where(Case.resident_id == account.id))
    assert case.urgent and case.township_code is None and case.county_code


def test_query_replies_with_latest_cases(app, client, session, fake_twilio):
    elder = factories.resident(session, phone="+8613955556666")
    old = make_case(
        session, elder, status="paid", urgent=False, case_no="SQ371102001-20261101-0003"
    )
    new = make_case(session, elder, case_no="JJ371102001-20261123-0007")
    new.created_at = old.created_at + dt.timedelta(days=1)
    session.commit()

    text_us(client, "查询")
    [reply] = _outbox(session, elder.phone)
    assert reply.template == "inbound_status"
    assert reply.body == "【指尖办】您的申请：JJ02001-1123-0007待受理；SQ02001-1101-0003已发放。"
    assert len(reply.body) <= 70

    text_us(client, "SQ02001-1101-0003")  # the masked number as the resident saw it
    assert _outbox(session, elder.phone)[-1].body == "【指尖办】您的申请：SQ02001-1101-0003已发放。"

    worker(app, **twilio_config(fake_twilio)).run_once()
    assert [r.form["To"] for r in fake_twilio.requests] == [elder.phone, elder.phone]


def test_query_never_shows_someone_elses_case(app, client, session):
    other = factories.resident(session)
    make_case(session, other, case_no="JJ371102001-20261123-0009")
    session.commit()
    text_us(client, "JJ…1123-0009", sender="+8613977778888")
    [reply] = _outbox(session, "+8613977778888")
    assert reply.template == "inbound_no_cases"
    assert session.scalar(select(Account).where(Account.phone == "+8613977778888")) is None


def test_unknown_text_gets_help_and_retried_webhook_is_handled_once(app, client, session):
    sid = "SM" + "9" * 32
    assert text_us(client, "你好", sid=sid).status_code == 200
    assert text_us(client, "你好", sid=sid).status_code == 200  # Twilio retried
    [reply] = _outbox(session, "+8613955556666")
    assert reply.template == "inbound_help" and "求助" in reply.body


def test_inbound_is_rate_limited_per_number(app, client, session):
    app.config.update(SMS_INBOUND_LIMIT=3, SMS_INBOUND_WINDOW_SECONDS=600)
    for _ in range(5):
        assert text_us(client, "你好").status_code == 200
    assert len(_outbox(session, "+8613955556666")) == 3
    intents = session.scalars(select(SmsInbound.intent).order_by(SmsInbound.id)).all()
    assert intents == ["unknown"] * 3 + ["rate_limited"] * 2
    text_us(client, "你好", sender="+8613900009999")  # another number is not affected
    assert len(_outbox(session, "+8613900009999")) == 1


def test_unsigned_and_forged_inbound_are_403(app, client, session):
    assert text_us(client, "求助", signed=False).status_code == 403
    assert text_us(client, "求助", token="forged-token").status_code == 403
    assert session.scalar(select(SmsInbound)) is None
    assert session.scalar(select(Case)) is None


def test_bad_sender_is_recorded_without_reply(app, client, session):
    assert text_us(client, "查询", sender="12345").status_code == 200
    assert session.scalar(select(SmsInbound.intent)) == "bad_sender"
    assert session.scalar(select(SmsOutbox)) is None
