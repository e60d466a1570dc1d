"""The checklist at work: it drives close and the paperwork clock, the case view lists what is
required, present and missing, a commitment (承诺制) counts only where configured, and the
resident's supply_info names the documents it brings."""

from __future__ import annotations

import datetime as dt

from server.cases import sweeper
from server.documents.service import commitment_text_hash
from tests import files
from tests.factories import auth
from tests.files import multipart
from tests.workflow_support import case_in, events, people, sms


def upload(client, app, account, case, kind, data=None):
    r = client.post(
        f"/api/v1/cases/{case.id}/documents",
        headers=auth(app, account),
        **multipart({"kind": kind}, data or files.pdf(), "a.pdf"),
    )
    assert r.status_code == 201, r.json
    return r.json


def act(client, app, account, case, **body):
    return client.post(f"/api/v1/cases/{case.id}/actions", json=body, headers=auth(app, account))


def kinds(items):
    return [i["kind"] for i in items]


def sign(client, app, account, case, **body):
    body = {"confirm": True, "text_sha256": commitment_text_hash(), **body}
    return client.post(f"/api/v1/cases/{case.id}/commitment", json=body, headers=auth(app, account))


def test_the_staff_case_view_lists_required_present_and_missing(app, client, session):
    p = people(session)
    case = case_in(session, "claimed", p, urgent=False, aid_type="minimum_living")
    upload(client, app, p.resident, case, "application")
    view = client.get(f"/api/v1/cases/{case.id}", headers=auth(app, p.duty)).json["documents"]
    assert view["stage"] == "decide"
    assert kinds(view["required"]) == ["application", "id_proof", "hardship_proof", "assessment"]
    assert kinds(view["present"]) == ["application"]
    assert kinds(view["missing"]) == ["id_proof", "hardship_proof", "assessment"]
    assert view["missing"][0]["label"] == "身份证明" and view["complete"] is False
    assert kinds(view["documents"]) == ["application"]
    # The resident's own view of the case stays as it was; their list is .../documents.
    mine = client.get(f"/api/v1/cases/{case.id}", headers=auth(app, p.resident)).json
    assert "documents" not in mine
    listing = client.get(f"/api/v1/cases/{case.id}/documents", headers=auth(app, p.resident))
    assert kinds(listing.json["missing"]) == ["id_proof", "hardship_proof", "assessment"]


def test_close_is_driven_by_the_checklist(app, client, session):
    p = people(session)
    case = case_in(session, "paid", p, urgent=False, aid_type="medical")
    from sqlalchemy import delete

    from server.documents.models import CaseDocument

    session.execute(delete(CaseDocument).where(CaseDocument.case_id == case.id))
    for kind in ("application", "id_proof", "hardship_proof"):
        upload(client, app, p.duty, case, kind)
    r = act(client, app, p.duty, case, action="close")
    assert r.status_code == 409 and r.json["code"] == "illegal_transition"
    assert "救助金发放签收单" in r.json["message"]
    view = client.get(f"/api/v1/cases/{case.id}/documents", headers=auth(app, p.duty)).json
    assert view["stage"] == "close" and kinds(view["missing"]) == ["payment_receipt"]
    upload(client, app, p.duty, case, "payment_receipt", files.jpeg_with_gps())
    assert act(client, app, p.duty, case, action="close").status_code == 200


def test_a_commitment_stands_in_for_the_proofs_where_configured(app, client, session):
    app.config["DOCUMENT_COMMITMENT_AID_TYPES"] = "temporary_emergency"
    p = people(session)
    case = case_in(session, "claimed", p)
    shown = client.get(f"/api/v1/cases/{case.id}/commitment", headers=auth(app, p.resident)).json
    assert shown["allowed"] is True and shown["signed_at"] is None
    assert kinds(shown["replaces"]) == ["id_proof", "hardship_proof"]
    assert "承诺" in shown["text"] and shown["text_sha256"] == commitment_text_hash()
    r = sign(client, app, p.resident, case)
    assert r.status_code == 201 and r.json["kind"] == "commitment"
    assert r.json["added_by_role"] == "resident"
    signed = client.get(f"/api/v1/cases/{case.id}/commitment", headers=auth(app, p.resident))
    assert signed.json["signed_at"] is not None

    r = act(client, app, p.duty, case, action="pay", amount_fen=50_000, method="cash")
    assert r.status_code == 200
    upload(client, app, p.resident, case, "application")
    upload(client, app, p.duty, case, "payment_receipt")
    view = client.get(f"/api/v1/cases/{case.id}", headers=auth(app, p.duty)).json["documents"]
    assert view["complete"] is True and view["decided_on_commitment"] is True
    assert kinds(view["by_commitment"]) == ["hardship_proof"]
    assert act(client, app, p.duty, case, action="close").status_code == 200
    # The commitment itself: the text, who signed and when, as a file.
    commitment = next(d for d in view["documents"] if d["kind"] == "commitment")
    r = client.get(
        f"/api/v1/cases/{case.id}/documents/{commitment['id']}", headers=auth(app, p.duty)
    )
    assert r.status_code == 200 and r.mimetype == "text/plain"
    text = r.data.decode()
    assert shown["text"] in text and "签署时间" in text and p.resident.phone not in text


def test_a_commitment_does_not_count_where_not_configured(app, client, session):
    app.config["DOCUMENT_COMMITMENT_AID_TYPES"] = "minimum_living"
    p = people(session)
    case = case_in(session, "claimed", p)  # temporary_emergency
    shown = client.get(f"/api/v1/cases/{case.id}/commitment", headers=auth(app, p.resident)).json
    assert shown["allowed"] is False and shown["replaces"] == []
    r = sign(client, app, p.resident, case)
    assert r.status_code == 409 and r.json["code"] == "commitment_not_allowed"
    # Signed while it was allowed, it still does not replace a proof once it is not.
    app.config["DOCUMENT_COMMITMENT_AID_TYPES"] = "temporary_emergency"
    assert sign(client, app, p.resident, case).status_code == 201
    app.config["DOCUMENT_COMMITMENT_AID_TYPES"] = ""
    act(client, app, p.duty, case, action="pay", amount_fen=50_000, method="cash")
    upload(client, app, p.resident, case, "application")
    upload(client, app, p.duty, case, "payment_receipt")
    r = act(client, app, p.duty, case, action="close")
    assert r.status_code == 409 and "困难情况证明" in r.json["message"]


def test_only_the_resident_signs_and_only_the_text_shown(app, client, session):
    p = people(session)
    case = case_in(session, "claimed", p)
    assert sign(client, app, p.duty, case).status_code == 403
    r = sign(client, app, p.resident, case, text_sha256="0" * 64)
    assert r.status_code == 422 and "text_sha256" in r.json["errors"]
    r = sign(client, app, p.resident, case, confirm=False)
    assert r.status_code == 422 and "confirm" in r.json["errors"]
    r = sign(client, app, p.resident, case, confirm="yes")
    assert r.status_code == 422


def test_the_paperwork_clock_stops_when_the_checklist_is_complete(app, client, session):
    p = people(session)
    case = case_in(session, "claimed", p)
    r = act(client, app, p.duty, case, action="pay", amount_fen=50_000, method="cash")
    assert r.status_code == 200
    for kind in ("application", "hardship_proof"):
        upload(client, app, p.duty, case, kind)
    session.refresh(case)
    assert case.paperwork_done_at is None
    upload(client, app, p.duty, case, "payment_receipt")
    session.refresh(case)
    assert case.paperwork_done_at is not None
    (done,) = [e for e in events(session, case) if e.action == "paperwork_complete"]
    assert done.data["in_time"] is True and done.resident_visible
    # Past the deadline the sweeper has nothing to escalate: the paperwork is done.
    later = case.paperwork_due_at + dt.timedelta(hours=1)
    assert sweeper.sweep(session, later)["paperwork_overdue"] == 0
    assert sms(session, case, "escalation") == []


def test_documents_complete_before_payment_stop_the_clock_at_once(app, client, session):
    p = people(session)
    case = case_in(session, "claimed", p)
    for kind in ("application", "hardship_proof", "payment_receipt"):
        upload(client, app, p.duty, case, kind)
    r = act(client, app, p.duty, case, action="pay", amount_fen=50_000, method="cash")
    assert r.status_code == 200
    session.refresh(case)
    assert case.paperwork_done_at is not None
    assert sms(session, case, "paperwork_due") == []  # nothing left to ask the resident for


def test_an_overdue_paperwork_is_still_escalated(app, client, session):
    p = people(session)
    case = case_in(session, "claimed", p)
    act(client, app, p.duty, case, action="pay", amount_fen=50_000, method="cash")
    session.refresh(case)
    assert (
        sweeper.sweep(session, case.paperwork_due_at + dt.timedelta(minutes=1))["paperwork_overdue"]
        == 1
    )


def test_supply_info_carries_the_documents_uploaded_for_it(app, client, session):
    p = people(session)
    case = case_in(session, "needs_info", p)
    first = upload(client, app, p.resident, case, "hardship_proof", files.jpeg_with_gps())
    second = upload(client, app, p.resident, case, "id_proof", files.png())
    other_case = case_in(session, "claimed", p)
    foreign = upload(client, app, p.resident, other_case, "other")
    r = act(
        client,
        app,
        p.resident,
        case,
        action="supply_info",
        document_ids=[first["id"], foreign["id"]],
    )
    assert r.status_code == 422 and str(foreign["id"]) in r.json["errors"]["document_ids"][0]
    r = act(
        client,
        app,
        p.resident,
        case,
        action="supply_info",
        message="诊断书和身份证已上传",
        document_ids=[first["id"], second["id"]],
    )
    assert r.status_code == 200 and r.json["status"] == "claimed"
    supplied = [e for e in events(session, case) if e.action == "supply_info"][-1]
    assert supplied.data["document_ids"] == [first["id"], second["id"]]
    assert "困难情况证明" in supplied.text_zh and "身份证明" in supplied.text_zh


def test_the_documents_listing_shows_who_and_when_not_where(app, client, session):
    p = people(session)
    case = case_in(session, "claimed", p)
    upload(client, app, p.resident, case, "application")
    (doc,) = client.get(f"/api/v1/cases/{case.id}/documents", headers=auth(app, p.duty)).json[
        "documents"
    ]
    assert doc["added_by_role"] == "resident" and doc["created_at"]
    assert "added_by_id" not in doc  # a resident is not told staff account ids
    assert "storage_key" not in doc and "commitment_text" not in doc
    assert doc["content_type"] == "application/pdf" and doc["size_bytes"] == len(files.pdf())
    assert doc["created_at"].endswith("+08:00")
