"""A case's supplementary material (申请书、证明、签收单 ...): what is on file, what is missing."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server import access, audit
from server.cases import clocks, state
from server.cases.events import add_event
from server.cases.locks import case_for_write, flush
from server.cases.models import Case, CaseDocument
from server.db import utcnow

DOCUMENT_KINDS = {
    "application": "救助申请书",
    "id_proof": "身份证明",
    "hardship_proof": "困难情况证明",
    "payment_receipt": "救助金发放签收单",
    "assessment": "核查（入户调查）记录",
    "other": "其他材料",
}
# 先行救助、事后补充: what must be on file before an urgent case that was paid can close.
PAPERWORK_REQUIRED = ("application", "payment_receipt")


def missing_paperwork(session: Session, case: Case) -> list[str]:
    """Required paperwork kinds not yet on file for ``case``."""
    have = set(session.scalars(select(CaseDocument.kind).where(CaseDocument.case_id == case.id)))
    return [kind for kind in PAPERWORK_REQUIRED if kind not in have]


def add_document(
    session: Session,
    *,
    actor: Any,
    case_id: uuid.UUID,
    kind: str,
    note: str | None = None,
    file_ref: str | None = None,
    now: dt.datetime | None = None,
) -> CaseDocument:
    """Record supplementary material on an open case (the paperwork window included)."""
    now = now or utcnow()
    case = case_for_write(session, case_id)
    access.require_action(actor, case, "add_document")
    if case.status not in state.DOCUMENT_STATUSES:
        raise state.refuse(
            case.status,
            "add_document",
            reason_zh="该状态下不能添加材料",
            reason_en="documents cannot be added in this status",
        )
    document = CaseDocument(
        case_id=case.id, kind=kind, note=note, file_ref=file_ref, added_by_id=actor.id
    )
    session.add(document)
    # Material is part of the record (closing depends on it): audited like a transition.
    audit.record(
        session,
        actor=actor,
        action="case.add_document",
        target_type="case",
        target_id=case.id,
        data={"kind": kind},
    )
    add_event(
        session,
        case_id=case.id,
        actor=actor,
        action="add_document",
        text_zh=f"已添加材料：{DOCUMENT_KINDS[kind]}",
        data={"kind": kind, "note": note},
    )
    clocks.renew_lease(case, actor, now)
    # A write on the case row, so the row version guards it like any status-dependent write.
    case.updated_at = now
    flush(session)
    return document
