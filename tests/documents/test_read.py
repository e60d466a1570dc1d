"""Reading documents: the bytes as an attachment never cached or sniffed, thumbnails, who may,
and every staff read in the audit trail."""

from __future__ import annotations

import io

from PIL import Image
from sqlalchemy import select

from server.audit import AuditEntry
from tests import factories, files
from tests.factories import OTHER_TOWNSHIP, auth
from tests.files import multipart
from tests.workflow_support import case_in, people


def upload(client, app, account, case, data, kind="hardship_proof", name="a.jpg"):
    r = client.post(
        f"/api/v1/cases/{case.id}/documents",
        headers=auth(app, account),
        **multipart({"kind": kind}, data, name),
    )
    assert r.status_code == 201, r.json
    return r.json


def reads(session, document_id):
    return session.scalars(
        select(AuditEntry).where(
            AuditEntry.target_type == "document", AuditEntry.target_id == str(document_id)
        )
    ).all()


def test_a_download_is_an_attachment_not_cached_not_sniffed(app, client, session, backend):
    p = people(session)
    case = case_in(session, "claimed", p)
    doc = upload(client, app, p.resident, case, files.pdf(), kind="application", name="申请.pdf")
    r = client.get(f"/api/v1/cases/{case.id}/documents/{doc['id']}", headers=auth(app, p.duty))
    assert r.status_code == 200 and r.data == files.pdf()
    assert r.mimetype == "application/pdf"
    assert r.headers["Content-Disposition"] == (
        f'attachment; filename="{case.case_no}-application-{doc["id"]}.pdf"'
    )
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    (entry,) = reads(session, doc["id"])
    assert entry.action == "document.read" and entry.actor_id == p.duty.id
    assert entry.data == {"case_id": str(case.id), "kind": "application"}


def test_the_resident_reads_their_own_unaudited_and_nobody_elses(app, client, session):
    p = people(session)
    case = case_in(session, "claimed", p)
    doc = upload(client, app, p.duty, case, files.jpeg_with_gps(), kind="payment_receipt")
    url = f"/api/v1/cases/{case.id}/documents/{doc['id']}"
    r = client.get(url, headers=auth(app, p.resident))
    assert r.status_code == 200 and r.mimetype == "image/jpeg"
    assert reads(session, doc["id"]) == []
    stranger = factories.resident(session)
    assert client.get(url, headers=auth(app, stranger)).status_code == 404
    r = client.get(f"/api/v1/cases/{case.id}/documents", headers=auth(app, stranger))
    assert r.status_code == 404


def test_staff_of_another_region_see_nothing(app, client, session):
    p = people(session)
    case = case_in(session, "claimed", p)
    doc = upload(client, app, p.resident, case, files.png(), name="x.png")
    elsewhere = factories.staff(session, role="duty", region=OTHER_TOWNSHIP)
    other_county = factories.staff(session, role="supervisor", region="371121")
    for who in (elsewhere, other_county):
        for url in (
            f"/api/v1/cases/{case.id}/documents/{doc['id']}",
            f"/api/v1/cases/{case.id}/documents/{doc['id']}/thumbnail",
            f"/api/v1/cases/{case.id}/documents",
        ):
            assert client.get(url, headers=auth(app, who)).status_code == 404, (who.role, url)
        r = client.post(
            f"/api/v1/cases/{case.id}/documents",
            headers=auth(app, who),
            **multipart({"kind": "other"}, files.png()),
        )
        assert r.status_code == 404
    assert reads(session, doc["id"]) == []


def test_a_document_of_another_case_is_not_found_through_this_one(app, client, session):
    p = people(session)
    mine, other = case_in(session, "claimed", p), case_in(session, "claimed", p)
    doc = upload(client, app, p.resident, other, files.png(), name="x.png")
    r = client.get(f"/api/v1/cases/{mine.id}/documents/{doc['id']}", headers=auth(app, p.duty))
    assert r.status_code == 404


def test_who_may_add_documents(app, client, session):
    p = people(session)
    case = case_in(session, "claimed", p)  # held by p.duty
    body = multipart({"kind": "other"}, files.png(), "x.png")
    url = f"/api/v1/cases/{case.id}/documents"
    assert client.post(url, headers=auth(app, p.duty), **body).status_code == 201
    assert client.post(url, headers=auth(app, p.supervisor), **body).status_code == 201
    assert client.post(url, headers=auth(app, p.resident), **body).status_code == 201
    r = client.post(url, headers=auth(app, p.duty2), **body)
    assert r.status_code == 409 and r.json["code"] == "claimed_by_other"
    for role, region in (("operator", "3711"), ("grid_worker", "371102001"), ("admin", "3711")):
        staff = factories.staff(session, role=role, region=region)
        assert client.post(url, headers=auth(app, staff), **body).status_code == 403, role


def test_thumbnails_of_images_only(app, client, session, backend):
    p = people(session)
    case = case_in(session, "claimed", p)
    photo = upload(client, app, p.resident, case, files.jpeg_with_gps((1600, 1200)))
    pdf = upload(client, app, p.resident, case, files.pdf(), kind="application", name="a.pdf")
    base = f"/api/v1/cases/{case.id}/documents"
    r = client.get(f"{base}/{photo['id']}/thumbnail", headers=auth(app, p.supervisor))
    assert r.status_code == 200 and r.mimetype == "image/jpeg"
    assert r.headers["Cache-Control"] == "no-store"
    assert max(Image.open(io.BytesIO(r.data)).size) == 320
    assert [e.action for e in reads(session, photo["id"])] == ["document.read_thumbnail"]
    r = client.get(f"{base}/{pdf['id']}/thumbnail", headers=auth(app, p.supervisor))
    assert r.status_code == 404
    listing = client.get(base, headers=auth(app, p.resident)).json
    assert [d["thumbnail"] for d in listing["documents"]] == [True, False]
