"""Which documents a case needs: per aid type and stage, the one place it is configured.

Defaults from the policy documents (``../shared/seeds``):

- every application starts with the application form (救助申请书), proof of identity and of
  the hardship; 低保 and 特困 also need the household check (入户调查) before a decision;
- money paid is signed for (救助金发放签收单) before a case closes;
- urgent aid (急难型临时救助) is paid first and its paperwork completed afterwards
  (先行救助、事后补充, seed 000 §二(一)8, seed 003 item 15): nothing is required before the
  decision, and the application, the hardship and the receipt before closing;
- where the deployment follows Fujian's practice (seed 004 §三: 取消证明材料，推行承诺制) a
  resident's signed commitment (kind ``commitment``) stands in for the proofs (``PROOFS``) of
  the aid types listed in ``DOCUMENT_COMMITMENT_AID_TYPES`` (default: 低保, 特困, 临时救助, the
  ones seed 004 names).

Stages: ``decide`` (what the decision rests on, shown to staff until the money is paid) and
``close`` (everything, checked by ``close`` and by the paperwork clock of urgent aid).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.cases.aid_types import AID_TYPES, URGENT_AID_TYPE
from server.cases.events import add_event
from server.documents.models import CaseDocument

KINDS = {
    "application": "救助申请书",
    "id_proof": "身份证明",
    "hardship_proof": "困难情况证明",
    "assessment": "核查（入户调查）记录",
    "payment_receipt": "救助金发放签收单",
    "commitment": "承诺书（承诺制）",
    "other": "其他材料",
}
# Kinds uploaded as files; a commitment is signed in the app (service.sign_commitment).
FILE_KINDS = tuple(kind for kind in KINDS if kind != "commitment")
# What a signed commitment stands in for, where configured.
PROOFS = ("id_proof", "hardship_proof")
STAGES = ("decide", "close")

_APPLICATION = ("application", "id_proof", "hardship_proof")
_CHECKED_AT_HOME = (*_APPLICATION, "assessment")


def _stages(decide: tuple[str, ...], close: tuple[str, ...] = ()) -> dict[str, tuple[str, ...]]:
    return {"decide": decide, "close": (*decide, *close, "payment_receipt")}


CHECKLISTS: dict[str, dict[str, tuple[str, ...]]] = {
    aid_type: _stages(_APPLICATION) for aid_type in AID_TYPES
}
CHECKLISTS["minimum_living"] = _stages(_CHECKED_AT_HOME)
CHECKLISTS["extreme_poverty"] = _stages(_CHECKED_AT_HOME)
CHECKLISTS[URGENT_AID_TYPE] = _stages((), ("application", "hardship_proof"))

COMMITMENT_DEFAULT = ("minimum_living", "extreme_poverty", URGENT_AID_TYPE, "temporary_expenditure")

assert set(CHECKLISTS) == set(AID_TYPES)
assert all(k in KINDS for stages in CHECKLISTS.values() for ks in stages.values() for k in ks)


def commitment_aid_types(config: Any) -> frozenset[str]:
    """The aid types whose proofs a commitment may replace (``DOCUMENT_COMMITMENT_AID_TYPES``)."""
    value = config.get("DOCUMENT_COMMITMENT_AID_TYPES")
    if value is None:
        return frozenset(COMMITMENT_DEFAULT)
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",")]
    return frozenset(v for v in value if v)


def commitment_allowed(aid_type: str) -> bool:
    """Whether this deployment accepts a commitment for ``aid_type`` (the default list
    outside an app context: worker, scripts)."""
    config = current_app.config if has_app_context() else {}
    return aid_type in commitment_aid_types(config)


def stage_of(status: str) -> str:
    """The stage a case in ``status`` is at: ``close`` once paid, else ``decide``."""
    return "close" if status in {"paid", "closed"} else "decide"


@dataclass
class Checklist:
    """Required, present and missing kinds of one case at one stage."""

    stage: str
    required: list[str]
    present: list[str]
    missing: list[str]
    commitment_allowed: bool
    # Required proofs on file only as the resident's commitment (承诺制).
    by_commitment: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing


def evaluate(
    *, aid_type: str, stage: str, on_file: set[str], commitment_allowed: bool
) -> Checklist:
    """The checklist of a case of ``aid_type`` at ``stage`` with documents of kinds ``on_file``."""
    required = list(CHECKLISTS.get(aid_type, _stages(_APPLICATION))[stage])
    committed = commitment_allowed and "commitment" in on_file
    present, missing, by_commitment = [], [], []
    for kind in required:
        if kind in on_file:
            present.append(kind)
        elif committed and kind in PROOFS:
            present.append(kind)
            by_commitment.append(kind)
        else:
            missing.append(kind)
    return Checklist(stage, required, present, missing, commitment_allowed, by_commitment)


# --- a case's checklist ---------------------------------------------------------------------


def case_checklist(session: Session, case: Any, *, stage: str | None = None) -> Checklist:
    """The case's checklist at ``stage`` (default: the stage its status is at)."""
    on_file = set(session.scalars(select(CaseDocument.kind).where(CaseDocument.case_id == case.id)))
    return evaluate(
        aid_type=case.aid_type,
        stage=stage or stage_of(case.status),
        on_file=on_file,
        commitment_allowed=commitment_allowed(case.aid_type),
    )


def missing_for_close(session: Session, case: Any) -> list[str]:
    """Kinds the case still needs before it may close."""
    return case_checklist(session, case, stage="close").missing


def note_paperwork(session: Session, *, case: Any, actor: Any, now: dt.datetime) -> None:
    """Stop the paperwork clock of a paid urgent case once its closing checklist is complete."""
    if case.paperwork_due_at is None or case.paperwork_done_at is not None:
        return
    if missing_for_close(session, case):
        return
    case.paperwork_done_at = now
    add_event(
        session,
        case_id=case.id,
        actor=actor,
        at=now,
        action="paperwork_complete",
        text_zh="先行救助手续已补齐。",
        data={
            "paperwork_due_at": case.paperwork_due_at.isoformat(),
            "in_time": now <= case.paperwork_due_at,
        },
    )


def supplied_documents(session: Session, case: Any, ids: list[int]) -> list[CaseDocument]:
    """The documents ``ids`` of ``case`` (a resident's ``supply_info`` names what it brings);
    a 422 naming any id that is not one of them."""
    from server.errors import ValidationFailed

    if not ids:
        return []
    found = session.scalars(
        select(CaseDocument)
        .where(CaseDocument.case_id == case.id, CaseDocument.id.in_(set(ids)))
        .order_by(CaseDocument.id)
    ).all()
    unknown = sorted(set(ids) - {d.id for d in found})
    if unknown:
        names = "、".join(map(str, unknown))
        raise ValidationFailed(errors={"document_ids": [f"不是该案件的材料：{names}。"]})
    return list(found)
