"""Uploading documents over HTTP: real files in, clean files stored, refusals leave nothing,
on both stores and both databases."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from sqlalchemy import exc as sa_exc
from sqlalchemy import select

from server.audit import AuditEntry
from server.documents import service
from server.documents.models import CaseDocument
from server.documents.storage import StorageUnavailable, storage
from tests import files
from tests.documents.conftest import stored_objects
from tests.factories import auth
from tests.files import multipart
from tests.workflow_support import case_in, people


def post(client, app, account, case, kind, data, name="photo.jpg", mimetype=None, **extra):
    return client.post(
        f"/api/v1/cases/{case.id}/documents",
        headers=auth(app, account),
        **multipart({"kind": kind, **extra}, data, name, mimetype),
    )


def rows(session, case):
    session.expire_all()
    return session.scalars(select(CaseDocument).where(CaseDocument.case_id == case.id)).all()


def test_a_phone_photo_is_stored_without_its_gps(app, client, session, backend):
    p = people(session)
    case = case_in(session, "claimed", p)
    r = post(client, app, p.resident, case, "hardship_proof", files.jpeg_with_gps(), note="诊断书")
    assert r.status_code == 201, r.json
    assert r.json["kind"] == "hardship_proof" and r.json["content_type"] == "image/jpeg"
    assert r.json["thumbnail"] is True and r.json["note"] == "诊断书"
    (document,) = rows(session, case)
    stored = storage(app).get(document.storage_key)
    assert len(stored) == document.size_bytes == r.json["size_bytes"]
    assert b"Exif" not in stored and b"Phone-X" not in stored
    image = Image.open(io.BytesIO(stored))
    assert image.format == "JPEG" and dict(image.getexif()) == {}
    import hashlib

    assert hashlib.sha256(stored).hexdigest() == document.sha256 == r.json["sha256"]
    assert document.added_by_id == p.resident.id
    assert len(stored_objects(app)) == 1


@pytest.mark.parametrize(
    ("make", "content_type"),
    [(files.png, "image/png"), (files.pdf, "application/pdf"), (files.heic, "image/jpeg")],
    ids=["png", "pdf", "heic"],
)
def test_png_pdf_and_heic_are_accepted(app, client, session, backend, make, content_type):
    p = people(session)
    case = case_in(session, "paid", p)
    # The name and the declared type say nothing: the bytes decide.
    r = post(client, app, p.duty, case, "other", make(), "x.exe", "application/x-msdownload")
    assert r.status_code == 201, r.json
    assert r.json["content_type"] == content_type
    assert len(stored_objects(app)) == 1


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (files.TEXT, "receipt.jpg"),
        (files.truncated_jpeg(), "receipt.jpg"),
        (b"%PDF-1.4\n%garbage", "receipt.pdf"),
        (b"", "empty.jpg"),
    ],
    ids=["text-renamed-jpg", "truncated-jpeg", "broken-pdf", "empty"],
)
def test_a_bad_file_is_a_422_in_chinese_and_nothing_is_stored(
    app, client, session, backend, data, name
):
    p = people(session)
    case = case_in(session, "claimed", p)
    r = post(client, app, p.duty, case, "payment_receipt", data, name, "image/jpeg")
    assert r.status_code == 422, r.json
    assert r.json["code"] == "invalid_document" and "文件" in r.json["message"]
    assert r.json["errors"]["file"]
    assert rows(session, case) == [] and stored_objects(app) == []


def test_ten_megabytes_and_one_byte_is_a_413(app, client, session, backend):
    p = people(session)
    case = case_in(session, "claimed", p)
    limit = app.config["DOCUMENT_MAX_BYTES"]
    assert limit == 10 * 1024 * 1024
    jpeg = files.jpeg_with_gps()
    too_big = jpeg + b"\x00" * (limit + 1 - len(jpeg))
    r = post(client, app, p.duty, case, "other", too_big)
    assert r.status_code == 413 and r.json["code"] == "document_too_large"
    assert "10 MB" in r.json["message"]
    assert rows(session, case) == [] and stored_objects(app) == []
    # Exactly at the limit is fine (what follows the photo's end goes with the re-encoding).
    r = post(client, app, p.duty, case, "other", too_big[:-1])
    assert r.status_code == 201 and r.json["size_bytes"] < 10_000
    # A smaller limit is configurable.
    app.config["DOCUMENT_MAX_BYTES"] = 500
    assert post(client, app, p.duty, case, "other", files.jpeg_with_gps()).status_code == 413


def test_a_body_far_beyond_the_limit_is_refused_before_it_is_read(app, client, session):
    p = people(session)
    case = case_in(session, "claimed", p)
    app.config["DOCUMENT_MAX_BYTES"] = 1000
    r = post(client, app, p.duty, case, "other", b"\xff\xd8\xff" + b"x" * 200_000)
    assert r.status_code == 413 and r.json["code"] == "payload_too_large"


def test_the_form_is_checked(app, client, session):
    p = people(session)
    case = case_in(session, "claimed", p)
    url = f"/api/v1/cases/{case.id}/documents"
    r = post(client, app, p.duty, case, "passport", files.pdf())
    assert r.status_code == 422 and "kind" in r.json["errors"]
    r = post(client, app, p.duty, case, "commitment", files.pdf())  # signed, not uploaded
    assert r.status_code == 422 and "kind" in r.json["errors"]
    r = client.post(
        url, data={"kind": "other"}, content_type="multipart/form-data", headers=auth(app, p.duty)
    )
    assert r.status_code == 422 and "file" in r.json["errors"]
    r = client.post(
        url,
        data={"kind": "other", "file": "not a file part"},
        content_type="multipart/form-data",
        headers=auth(app, p.duty),
    )
    assert r.status_code == 422 and "file" in r.json["errors"]
    # The old JSON metadata with a free-text reference is no document any more.
    r = client.post(
        url, json={"kind": "other", "file_ref": "../../etc/passwd"}, headers=auth(app, p.duty)
    )
    assert r.status_code == 422
    assert rows(session, case) == []


def test_a_storage_failure_mid_request_leaves_nothing(app, client, session, backend, monkeypatch):
    p = people(session)
    case = case_in(session, "claimed", p)
    store = storage(app)
    real_put = store.put

    def half_then_fail(key, data, content_type):
        real_put(key, data[: len(data) // 2], content_type)  # something got written ...
        store.delete(key)  # ... and the backend cleaned up as it failed
        raise StorageUnavailable()

    monkeypatch.setattr(store, "put", half_then_fail)
    r = post(client, app, p.duty, case, "payment_receipt", files.pdf())
    assert r.status_code == 503 and r.json["code"] == "storage_unavailable"
    assert r.headers["Retry-After"] == "5"
    assert rows(session, case) == [] and stored_objects(app) == []
    assert not session.scalars(
        select(AuditEntry).where(AuditEntry.action == "case.add_document")
    ).all()


def test_a_filesystem_failure_mid_write_leaves_nothing(app, client, session, tmp_path, monkeypatch):
    import os

    app.config["DOCUMENT_DIR"] = str(tmp_path / "docs")
    p = people(session)
    case = case_in(session, "claimed", p)

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    r = post(client, app, p.duty, case, "payment_receipt", files.pdf())
    assert r.status_code == 503
    assert rows(session, case) == []
    assert [x for x in (tmp_path / "docs").rglob("*") if x.is_file()] == []


def test_a_database_failure_after_the_file_was_stored_deletes_it(
    app, client, session, backend, monkeypatch
):
    p = people(session)
    case = case_in(session, "claimed", p)
    stored = []
    store = storage(app)
    real_put = store.put

    def put(key, data, content_type):
        real_put(key, data, content_type)
        stored.append(key)

    def database_gone(*args, **kwargs):
        raise sa_exc.OperationalError("INSERT INTO audit_log", {}, Exception("server closed"))

    monkeypatch.setattr(store, "put", put)
    monkeypatch.setattr(service, "record", database_gone)
    r = post(client, app, p.duty, case, "payment_receipt", files.pdf())
    assert r.status_code == 503 and r.json["code"] == "database_unavailable"
    assert len(stored) == 1  # the file had been stored ...
    assert stored_objects(app) == []  # ... and is gone again
    assert rows(session, case) == []


def test_documents_only_while_the_case_is_open(app, client, session):
    p = people(session)
    for status in ("queued", "closed", "rejected", "withdrawn", "referred"):
        case = case_in(session, status, p)
        r = post(client, app, p.duty, case, "other", files.pdf())
        assert r.status_code == 409, (status, r.json)
        assert rows(session, case) == []


def test_an_upload_is_audited_and_on_the_timeline(app, client, session):
    p = people(session)
    case = case_in(session, "claimed", p)
    r = post(client, app, p.duty, case, "assessment", files.png())
    entry = session.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "case.add_document", AuditEntry.target_id == str(case.id)
        )
    ).one()
    assert entry.actor_id == p.duty.id
    assert entry.data == {
        "kind": "assessment",
        "document_id": r.json["id"],
        "sha256": r.json["sha256"],
    }
    mine = client.get(f"/api/v1/cases/{case.id}", headers=auth(app, p.resident))
    assert mine.json["timeline"][-1]["text"] == "已添加材料：核查（入户调查）记录"
