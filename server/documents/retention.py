"""Retention: documents of cases closed long ago are detached from their stored objects,
audited, by ``flask documents purge`` only; nothing else deletes a file."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.audit import record
from server.cases.models import Case
from server.documents.models import CaseDocument


def purgeable(session: Session, *, closed_before: dt.datetime) -> list[int]:
    """Ids of stored documents of cases that ended before ``closed_before``."""
    return list(
        session.scalars(
            select(CaseDocument.id)
            .join(Case, Case.id == CaseDocument.case_id)
            .where(
                Case.closed_at.is_not(None),
                Case.closed_at < closed_before,
                CaseDocument.storage_key.is_not(None),
            )
            .order_by(CaseDocument.id)
        )
    )


def purge(session: Session, *, document_id: int, now: dt.datetime) -> str | None:
    """Detach a document from its object (``storage_key`` cleared, ``purged_at`` set; kind,
    size, hash, who and when stay) and audit it; flushes and returns the key whose object
    the caller deletes *after* committing, so no committed row points at a deleted object
    (a failed delete leaves an object no row points at, its key in the audit entry)."""
    document = session.get(CaseDocument, document_id)
    if document is None or document.storage_key is None:
        return None
    key = document.storage_key
    document.storage_key = None
    document.purged_at = now
    record(
        session,
        actor=None,
        action="document.purge",
        target_type="document",
        target_id=document.id,
        data={
            "case_id": str(document.case_id),
            "kind": document.kind,
            "sha256": document.sha256,
            "storage_key": key,
        },
    )
    session.flush()
    return key
