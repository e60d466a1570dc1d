"""``flask documents purge``: files of cases closed more than N years ago go, audited; the
record of what was there stays; nothing else deletes a file."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update

from server.audit import AuditEntry
from server.cases.models import Case
from server.db import utcnow
from server.documents.models import CaseDocument
from tests import files
from tests.documents.conftest import stored_objects
from tests.factories import auth
from tests.files import multipart
from tests.workflow_support import case_in, people


def closed_case_with_a_photo(app, client, session, p, closed_at):
    case = case_in(session, "claimed", p)
    r = client.post(
        f"/api/v1/cases/{case.id}/documents",
        headers=auth(app, p.duty),
        **multipart({"kind": "payment_receipt"}, files.jpeg_with_gps()),
    )
    assert r.status_code == 201
    # Set-up: the case ended long ago (not a transition under test).
    session.execute(
        update(Case).where(Case.id == case.id).values(status="closed", closed_at=closed_at)
    )
    return case, r.json["id"]


def test_purge_deletes_old_files_keeps_the_record_and_audits(app, client, session, backend):
    p = people(session)
    now = utcnow()
    old, old_doc = closed_case_with_a_photo(app, client, session, p, now - dt.timedelta(days=3700))
    recent, recent_doc = closed_case_with_a_photo(
        app, client, session, p, now - dt.timedelta(days=700)
    )
    open_case = case_in(session, "claimed", p)
    client.post(
        f"/api/v1/cases/{open_case.id}/documents",
        headers=auth(app, p.duty),
        **multipart({"kind": "other"}, files.pdf()),
    )
    assert len(stored_objects(app)) == 3
    runner = app.test_cli_runner()

    dry = runner.invoke(args=["documents", "purge", "--dry-run"])
    assert dry.exit_code == 0 and "1 documents" in dry.output
    assert len(stored_objects(app)) == 3

    result = runner.invoke(args=["documents", "purge"])  # DOCUMENT_RETENTION_YEARS: 10
    assert result.exit_code == 0, result.output
    assert "purged 1 documents" in result.output
    assert len(stored_objects(app)) == 2
    session.expire_all()
    gone = session.get(CaseDocument, old_doc)
    assert gone.storage_key is None and gone.purged_at is not None
    assert gone.sha256 and gone.kind == "payment_receipt"  # the record of what was there
    assert session.get(CaseDocument, recent_doc).storage_key is not None
    (entry,) = session.scalars(select(AuditEntry).where(AuditEntry.action == "document.purge"))
    assert entry.target_id == str(old_doc) and entry.data["case_id"] == str(old.id)
    r = client.get(f"/api/v1/cases/{old.id}/documents/{old_doc}", headers=auth(app, p.duty))
    assert r.status_code == 410 and r.json["code"] == "document_purged"

    # A shorter retention on the command line reaches the recent one; a rerun finds nothing.
    assert "purged 1 documents" in runner.invoke(args=["documents", "purge", "--years", "1"]).output
    assert "purged 0 documents" in runner.invoke(args=["documents", "purge", "--years", "1"]).output
    assert len(stored_objects(app)) == 1  # the open case's file
    assert recent.closed_at is not None
