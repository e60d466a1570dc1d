"""Documents of a case: upload, commitment (承诺制), checklist, download (the retention purge
is ``server.documents.retention``).

Storage invariants: a file is stored under a fresh random key *before* its row is written,
and the row is written only once the file is complete, so a row never points at nothing;
if the transaction then does not commit (a database failure, any error answer), the file
is deleted again (``init_app``'s session hooks), so a failed upload leaves nothing behind.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import uuid
from typing import Any

from flask import Flask, current_app
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from server import access
from server.audit import record
from server.cases import clocks, state
from server.cases.events import add_event
from server.cases.locks import case_for_write, flush
from server.cases.models import Case
from server.db import utcnow
from server.documents import checklist, content
from server.documents.models import CaseDocument
from server.documents.storage import MissingObject, Storage, new_key, storage
from server.errors import Conflict, DomainError, NotFound, ValidationFailed
from server.masking import mask_phone

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
_PENDING = "aidline.documents.pending"

COMMITMENT_TEXT = (
    "本人承诺：申请救助时所填报的家庭人口、收入、财产和困难情况真实、完整，"
    "以承诺代替相关证明材料；如有虚报、隐瞒、伪造，愿意承担相应法律责任，"
    "退还违规领取的救助款物，并同意记入社会救助失信记录。"
)


class Gone(DomainError):
    status = 410
    code = "document_purged"


def max_bytes() -> int:
    """The largest file accepted (``DOCUMENT_MAX_BYTES``)."""
    return int(current_app.config.get("DOCUMENT_MAX_BYTES") or DEFAULT_MAX_BYTES)


# --- files stored in a transaction that does not commit are deleted again -------------------


def _remember(session: Session, store: Storage, key: str) -> None:
    session.info.setdefault(_PENDING, []).append((store, key))


def init_app(app: Flask) -> None:
    """Install the hooks that delete the files of uploads whose transaction did not commit."""
    from server.session import database

    maker = database(app).sessionmaker

    @event.listens_for(maker, "after_commit")
    def _kept(session: Session) -> None:
        session.info.pop(_PENDING, None)

    @event.listens_for(maker, "after_transaction_end")
    def _dropped(session: Session, transaction: Any) -> None:
        if transaction.parent is not None:
            return  # a savepoint: the request's own transaction decides
        for store, key in session.info.pop(_PENDING, ()):
            try:
                store.delete(key)
            except DomainError:
                log.error("document object %s of a rolled-back upload not deleted", key)


# --- writing ----------------------------------------------------------------------------


def _open_case_for_documents(
    session: Session, *, actor: Any, case_id: uuid.UUID, action: str
) -> Case:
    case = case_for_write(session, case_id)
    access.require_action(actor, case, action)
    if case.status not in state.DOCUMENT_STATUSES:
        raise state.refuse(
            case.status,
            action,
            reason_zh="该状态下不能添加材料",
            reason_en="documents cannot be added in this status",
        )
    return case


def _recorded(
    session: Session, *, actor: Any, case: Case, document: CaseDocument, text_zh: str, now: Any
) -> None:
    session.add(document)
    flush(session)
    # Material is part of the record (closing depends on it): audited like a transition.
    record(
        session,
        actor=actor,
        action="case.add_document",
        target_type="case",
        target_id=case.id,
        data={"kind": document.kind, "document_id": document.id, "sha256": document.sha256},
    )
    add_event(
        session,
        case_id=case.id,
        actor=actor,
        action="add_document",
        text_zh=text_zh,
        data={"kind": document.kind, "document_id": document.id, "note": document.note},
        at=now,
    )
    clocks.renew_lease(case, actor, now)
    # A write on the case row, so the row version guards it like any status-dependent write.
    case.updated_at = now
    checklist.note_paperwork(session, case=case, actor=actor, now=now)
    flush(session)


def checked_file(data: bytes) -> content.CleanFile:
    """The file to store for upload ``data`` (413 above DOCUMENT_MAX_BYTES, 422 when it is not
    an image or PDF that reads in full). No database: callers run it before they open the
    request's session, so decoding a large photo never holds SQLite's write lock."""
    content.check_size(len(data), max_bytes())
    return content.clean(data)


def stored_file(
    session: Session,
    *,
    case_id: uuid.UUID,
    kind: str,
    clean: content.CleanFile,
    actor: Any,
    now: dt.datetime,
) -> CaseDocument:
    """Store ``clean`` under a fresh key and return its document row (not yet added); the
    file goes again if this transaction does not commit."""
    store = storage()
    key = new_key()
    store.put(key, clean.data, clean.content_type)
    _remember(session, store, key)
    return CaseDocument(
        case_id=case_id,
        kind=kind,
        storage_key=key,
        content_type=clean.content_type,
        size_bytes=len(clean.data),
        sha256=clean.sha256,
        added_by_id=getattr(actor, "id", None),
        added_by_role=getattr(actor, "role", None),
        created_at=now,
    )


def upload(
    session: Session,
    *,
    actor: Any,
    case_id: uuid.UUID,
    kind: str,
    clean: content.CleanFile,
    note: str | None = None,
    now: dt.datetime | None = None,
) -> CaseDocument:
    """Store an uploaded file (``checked_file``) as a document of the case and record it."""
    now = now or utcnow()
    case = _open_case_for_documents(session, actor=actor, case_id=case_id, action="add_document")
    document = stored_file(session, case_id=case.id, kind=kind, clean=clean, actor=actor, now=now)
    document.note = note
    label = checklist.KINDS[kind]
    _recorded(
        session, actor=actor, case=case, document=document, text_zh=f"已添加材料：{label}", now=now
    )
    return document


def commitment_text_hash() -> str:
    """SHA-256 of COMMITMENT_TEXT: a signature names the text it confirms."""
    return hashlib.sha256(COMMITMENT_TEXT.encode()).hexdigest()


def commitment(session: Session, *, actor: Any, case: Any) -> dict[str, Any]:
    """What the app shows before a resident signs: the text, whether it applies, whether signed."""
    signed = session.scalar(
        select(CaseDocument.created_at).where(
            CaseDocument.case_id == case.id, CaseDocument.kind == "commitment"
        )
    )
    allowed = checklist.commitment_allowed(case.aid_type)
    return {
        "text": COMMITMENT_TEXT,
        "text_sha256": commitment_text_hash(),
        "allowed": allowed,
        "replaces": [_kind(k) for k in checklist.PROOFS] if allowed else [],
        "signed_at": signed,
    }


def sign_commitment(
    session: Session,
    *,
    actor: Any,
    case_id: uuid.UUID,
    text_sha256: str,
    confirm: bool,
    now: dt.datetime | None = None,
) -> CaseDocument:
    """Record the resident's signed commitment (承诺制) where the aid type allows it."""
    now = now or utcnow()
    case = _open_case_for_documents(session, actor=actor, case_id=case_id, action="sign_commitment")
    if not confirm:
        raise ValidationFailed(errors={"confirm": ["须确认承诺内容。"]})
    if text_sha256 != commitment_text_hash():
        raise ValidationFailed(errors={"text_sha256": ["承诺书内容已更新，请重新阅读后确认。"]})
    if not checklist.commitment_allowed(case.aid_type):
        raise Conflict(
            "该救助类型不适用承诺制，请按清单提交证明材料。",
            code="commitment_not_allowed",
            message_en="This aid type does not accept a commitment; upload the proofs.",
        )
    document = CaseDocument(
        case_id=case.id,
        kind="commitment",
        commitment_text=COMMITMENT_TEXT,
        sha256=commitment_text_hash(),
        added_by_id=actor.id,
        added_by_role=actor.role,
        created_at=now,
    )
    proofs = "、".join(checklist.KINDS[k] for k in checklist.PROOFS)
    text = f"申请人已签署承诺书（承诺制），代替{proofs}。"
    _recorded(session, actor=actor, case=case, document=document, text_zh=text, now=now)
    return document


# --- the checklist ----------------------------------------------------------------------


def _kind(kind: str) -> dict[str, str]:
    return {"kind": kind, "label": checklist.KINDS[kind]}


def overview(session: Session, *, actor: Any, case: Any) -> dict[str, Any]:
    """Required, present and missing documents of a case, with the documents on file (the
    API's ``GET /cases/{id}/documents``, the staff case view and the console show this)."""
    items = session.scalars(
        select(CaseDocument).where(CaseDocument.case_id == case.id).order_by(CaseDocument.id)
    ).all()
    result = checklist.evaluate(
        aid_type=case.aid_type,
        stage=checklist.stage_of(case.status),
        on_file={d.kind for d in items},
        commitment_allowed=checklist.commitment_allowed(case.aid_type),
    )
    return {
        "stage": result.stage,
        "required": [_kind(k) for k in result.required],
        "present": [_kind(k) for k in result.present],
        "missing": [_kind(k) for k in result.missing],
        "complete": result.complete,
        "commitment_allowed": result.commitment_allowed,
        "decided_on_commitment": bool(result.by_commitment),
        "by_commitment": [_kind(k) for k in result.by_commitment],
        "documents": items,
    }


# --- reading ----------------------------------------------------------------------------


def _document(session: Session, *, actor: Any, case: Any, document_id: int) -> CaseDocument:
    document = session.get(CaseDocument, document_id)
    if document is None or document.case_id != case.id:
        raise NotFound("未找到该材料。", message_en="Document not found.")
    return document


def download(
    session: Session, *, actor: Any, case: Any, document_id: int, thumbnail: bool = False
) -> tuple[CaseDocument, bytes, str]:
    """A document's bytes and content type for ``actor`` (who may view ``case``: checked by
    the caller through access.require_view); a staff read is audited."""
    document = _document(session, actor=actor, case=case, document_id=document_id)
    if document.kind == "commitment":
        if thumbnail:
            raise NotFound("承诺书没有缩略图。", message_en="A commitment has no thumbnail.")
        data, content_type = _commitment_file(session, document), "text/plain; charset=utf-8"
    elif document.storage_key is None:
        raise Gone(
            "该材料已按保存期限清除。", message_en="The document was purged after its retention."
        )
    else:
        if thumbnail and document.content_type not in content.IMAGE_TYPES:
            raise NotFound("只有图片有缩略图。", message_en="Only images have thumbnails.")
        try:
            data = storage().get(document.storage_key)
        except MissingObject:
            log.error("document %s: its object is missing from the store", document.id)
            raise NotFound("未找到该材料的文件。", message_en="The file is missing.") from None
        content_type = document.content_type or "application/octet-stream"
        if thumbnail:
            data, content_type = content.thumbnail(data), "image/jpeg"
    if actor.is_staff:
        record(
            session,
            actor=actor,
            action="document.read_thumbnail" if thumbnail else "document.read",
            target_type="document",
            target_id=document.id,
            data={"case_id": str(case.id), "kind": document.kind},
        )
    return document, data, content_type


def _commitment_file(session: Session, document: CaseDocument) -> bytes:
    from server.accounts.models import Account
    from server.api import local_time

    signer = session.get(Account, document.added_by_id) if document.added_by_id else None
    lines = [
        "承诺书（承诺制）",
        "",
        document.commitment_text or "",
        "",
        f"签署人：{mask_phone(signer.phone) if signer else '—'}（本人在应用内确认）",
        f"签署时间：{local_time(document.created_at)}",
        f"承诺内容 SHA-256：{document.sha256}",
    ]
    return "\n".join(lines).encode()


def file_name(case: Any, document: CaseDocument, *, thumbnail: bool = False) -> str:
    """The download's name: the case number, kind and id (never a client's file name)."""
    if document.kind == "commitment":
        extension = "txt"
    elif thumbnail:
        extension = "jpg"
    else:
        extension = content.EXTENSIONS.get(document.content_type or "", "bin")
    suffix = "-thumb" if thumbnail else ""
    return f"{case.case_no}-{document.kind}-{document.id}{suffix}.{extension}"
