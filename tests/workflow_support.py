"""Shared set-up for the workflow tests: people, cases in any status, valid action args."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from notifications.models import SmsOutbox
from server.accounts.models import Account
from server.cases.models import CaseEvent
from server.db import utcnow
from server.documents.checklist import CHECKLISTS
from server.documents.models import CaseDocument
from tests import factories
from tests.factories import COUNTY, OTHER_TOWNSHIP, TOWNSHIP


@dataclass
class People:
    duty: Account
    duty2: Account
    supervisor: Account
    resident: Account
    admin: Account


def people(session: Session) -> People:
    """Duty officers of TOWNSHIP, a county supervisor (with phones), a resident, an admin;
    and the county's demo aid standards."""
    factories.aid_standard(session)
    return People(
        duty=factories.staff(session, role="duty", region=TOWNSHIP, phone="+8613800000001"),
        duty2=factories.staff(session, role="duty", region=TOWNSHIP, phone="+8613800000002"),
        supervisor=factories.staff(
            session, role="supervisor", region=COUNTY, phone="+8613800000009"
        ),
        resident=factories.resident(session, phone="+8613812345678"),
        admin=factories.staff(session, role="admin", region="3711"),
    )


HELD = ("claimed", "needs_info", "pending_county_approval", "approved", "paid")
FINAL = ("closed", "rejected", "withdrawn", "referred")


def case_in(
    session: Session,
    status: str,
    p: People,
    *,
    holder: Account | None = None,
    triage: bool = False,
    urgent: bool = True,
    **fields: Any,
) -> Any:
    """A case already in ``status``, consistent with how it would have got there."""
    now = utcnow()
    values: dict[str, Any] = {}
    if status in HELD:
        values.update(
            claimed_by_id=(holder or p.duty).id,
            claimed_at=now - dt.timedelta(minutes=1),
            lease_expires_at=(
                now + dt.timedelta(minutes=29) if urgent and status == "claimed" else None
            ),
        )
    if status == "pending_county_approval":
        values["approved_amount_fen"] = 1_500_000
    if status == "approved":
        values["approved_amount_fen"] = 100_000
    if status == "paid":
        values.update(
            paid_amount_fen=50_000,
            pay_method="cash",
            paid_at=now - dt.timedelta(minutes=1),
            paperwork_due_at=now + dt.timedelta(days=7) if urgent else None,
        )
    if status in FINAL:
        values["closed_at"] = now
    values.update(fields)
    case = factories.case(
        session,
        resident_account=p.resident,
        township=None if triage else TOWNSHIP,
        county=COUNTY,
        urgent=urgent,
        status=status,
        **values,
    )
    if status == "paid":
        # Its paperwork on file (records only: no test here reads the files).
        for kind in CHECKLISTS[case.aid_type]["close"]:
            session.add(CaseDocument(case_id=case.id, kind=kind, added_by_id=p.duty.id))
        session.flush()
    return case


def upload(
    client: Any, app: Any, account: Account, case: Any, kind: str, data: bytes | None = None
):
    """POST a real file (a one-page PDF unless ``data``) as a document of ``case``."""
    import io

    from tests import files

    body = {"kind": kind, "file": (io.BytesIO(files.pdf() if data is None else data), "a.pdf")}
    return client.post(
        f"/api/v1/cases/{case.id}/documents",
        data=body,
        content_type="multipart/form-data",
        headers=factories.auth(app, account),
    )


def args_for(action: str, status: str) -> dict[str, Any]:
    """Valid arguments of ``action`` for a case in ``status``."""
    return {
        "approve": {} if status == "pending_county_approval" else {"amount_fen": 50_000},
        "pay": {"amount_fen": 50_000, "method": "cash"},
        "request_info": {"message": "请提供身份证明"},
        "supply_info": {"message": "已上传"},
        "reject": {"reason": "不符合救助条件"},
        "transfer": {"township_code": OTHER_TOWNSHIP, "reason": "实际居住在石臼街道"},
        "refer": {"department": "medical_insurance", "reason": "医疗费用报销"},
        "close": {},
        "withdraw": {},
        "release": {},
        "assign": {"township_code": TOWNSHIP},
        "note": {"message": "已电话联系本人"},
    }[action]


def actor_for(action: str, status: str, p: People) -> Account:
    """Someone whose role may take ``action`` on a case in ``status``."""
    if action in {"supply_info", "withdraw"}:
        return p.resident
    if action == "assign":
        return p.supervisor
    if status == "pending_county_approval" and action in {"approve", "reject"}:
        return p.supervisor
    return p.duty


def sms(session: Session, case: Any = None, template: str | None = None) -> list[SmsOutbox]:
    query = select(SmsOutbox).order_by(SmsOutbox.id)
    if case is not None:
        query = query.where(SmsOutbox.case_id == case.id)
    if template is not None:
        query = query.where(SmsOutbox.template == template)
    return list(session.scalars(query))


def events(session: Session, case: Any) -> list[CaseEvent]:
    return list(
        session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id)
        )
    )
