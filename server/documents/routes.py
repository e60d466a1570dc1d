"""``/api/v1/cases/{id}/documents`` (upload, list with the checklist, download, thumbnail)
and ``/api/v1/cases/{id}/commitment`` (承诺制)."""

from __future__ import annotations

import uuid

import marshmallow as ma
from flask import current_app
from flask.views import MethodView

from server.api import Blueprint, actor
from server.cases import queries
from server.db import utcnow
from server.documents import service
from server.documents.schemas import (
    CommitmentSchema,
    CommitmentSignSchema,
    DocumentSchema,
    DocumentsSchema,
    DocumentUploadSchema,
)
from server.session import db_session

blp = Blueprint(
    "documents",
    __name__,
    url_prefix="/api/v1/cases",
    description="案件材料：上传、清单（应交/已交/缺少）、下载、缩略图、承诺制",
)

WRITERS = ["resident", "duty", "supervisor"]

_FILE_TYPES = ("image/jpeg", "image/png", "application/pdf", "text/plain")
_BINARY = {"schema": {"type": "string", "format": "binary"}}


@blp.route("/<uuid:case_id>/documents")
class CaseDocuments(MethodView):
    @blp.login_required
    @blp.response(200, DocumentsSchema)
    @blp.alt_response(404, description="案件不存在或不在您的范围内")
    def get(self, case_id: uuid.UUID):
        """The case's checklist (required / present / missing) and its documents."""
        session, who = db_session(), actor()
        case = queries.get_case(session, actor=who, case_id=case_id)
        return service.overview(session, actor=who, case=case)

    @blp.login_required(roles=WRITERS)
    # A multipart part that is neither the file nor a field is refused, as in a JSON body.
    @blp.arguments(DocumentUploadSchema, location="files", unknown=ma.RAISE)
    @blp.response(201, DocumentSchema)
    @blp.alt_response(404, description="案件不存在或不在您的范围内")
    @blp.alt_response(409, description="当前状态不能添加材料，案件已由他人认领，或并发修改")
    @blp.alt_response(413, description="文件超过 DOCUMENT_MAX_BYTES（document_too_large）")
    @blp.alt_response(503, description="文件存储暂不可用，未保存任何内容（storage_unavailable）")
    def post(self, args, case_id: uuid.UUID):
        """Upload a document (multipart: file, kind): sniffed, images stripped of metadata."""
        # Checked and re-encoded before the session (and SQLite's write lock) is opened.
        clean = service.checked_file(args["file"].stream.read(service.max_bytes() + 1))
        return service.upload(
            db_session(),
            actor=actor(),
            case_id=case_id,
            kind=args["kind"],
            note=args.get("note"),
            clean=clean,
            now=utcnow(),
        )


def _file_response(case_id: uuid.UUID, document_id: int, *, thumbnail: bool):
    session, who = db_session(), actor()
    case = queries.get_case(session, actor=who, case_id=case_id)
    document, data, content_type = service.download(
        session, actor=who, case=case, document_id=document_id, thumbnail=thumbnail
    )
    return file_response(case, document, data, content_type, thumbnail=thumbnail)


def file_response(case, document, data: bytes, content_type: str, *, thumbnail: bool):
    """A document's bytes as an attachment: never cached, never sniffed, never run (the API
    and the console serve them alike)."""
    name = service.file_name(case, document, thumbnail=thumbnail)
    response = current_app.response_class(data, status=200, content_type=content_type)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


_FILE_ANSWER = {
    "200": {
        "description": "文件（Content-Disposition: attachment；不缓存）；承诺书为 text/plain",
        "content": {t: _BINARY for t in _FILE_TYPES},
    }
}


@blp.route("/<uuid:case_id>/documents/<int:document_id>")
class CaseDocumentFile(MethodView):
    @blp.login_required
    @blp.doc(responses=_FILE_ANSWER)
    @blp.alt_response(404, description="案件或材料不存在，或不在您的范围内")
    @blp.alt_response(410, description="已按保存期限清除（document_purged）")
    @blp.alt_response(503, description="文件存储暂不可用（storage_unavailable）")
    def get(self, case_id: uuid.UUID, document_id: int):
        """Download a document (whoever may view the case; staff reads are audited)."""
        return _file_response(case_id, document_id, thumbnail=False)


@blp.route("/<uuid:case_id>/documents/<int:document_id>/thumbnail")
class CaseDocumentThumbnail(MethodView):
    @blp.login_required
    @blp.doc(
        responses={
            "200": {
                "description": "JPEG 缩略图（最长边 320 像素）",
                "content": {"image/jpeg": _BINARY},
            }
        }
    )
    @blp.alt_response(404, description="案件或材料不存在、不在您的范围内，或不是图片")
    @blp.alt_response(410, description="已按保存期限清除（document_purged）")
    @blp.alt_response(503, description="文件存储暂不可用（storage_unavailable）")
    def get(self, case_id: uuid.UUID, document_id: int):
        """A thumbnail of an image document (for the console's case page)."""
        return _file_response(case_id, document_id, thumbnail=True)


@blp.route("/<uuid:case_id>/commitment")
class CaseCommitment(MethodView):
    @blp.login_required
    @blp.response(200, CommitmentSchema)
    @blp.alt_response(404, description="案件不存在或不在您的范围内")
    def get(self, case_id: uuid.UUID):
        """The commitment (承诺书) text, whether the case's aid type accepts it, and if signed."""
        session, who = db_session(), actor()
        case = queries.get_case(session, actor=who, case_id=case_id)
        return service.commitment(session, actor=who, case=case)

    @blp.login_required(roles=["resident"])
    @blp.arguments(CommitmentSignSchema)
    @blp.response(201, DocumentSchema)
    @blp.alt_response(404, description="案件不存在或不是您的案件")
    @blp.alt_response(
        409, description="当前状态不能添加材料，或该救助类型不适用承诺制（commitment_not_allowed）"
    )
    def post(self, args, case_id: uuid.UUID):
        """Sign the commitment (承诺制) instead of the proofs, where configured."""
        return service.sign_commitment(
            db_session(), actor=actor(), case_id=case_id, now=utcnow(), **args
        )
