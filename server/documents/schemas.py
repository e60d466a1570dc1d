"""Schemas of the documents API (multipart upload, listing with the checklist, commitment)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask_smorest.fields import Upload
from werkzeug.datastructures import FileStorage

from server.api import LocalDateTime, Schema, Text
from server.documents.checklist import FILE_KINDS, KINDS

_KINDS_DOC = ", ".join(f"{k}={KINDS[k]}" for k in FILE_KINDS)


class FileField(Upload):
    """A file part of a multipart body (a plain text part of that name is refused)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> FileStorage:
        if not isinstance(value, FileStorage):
            raise ma.ValidationError("必须以文件上传（multipart/form-data 的文件部分）。")
        return value


class DocumentUploadSchema(Schema):
    """A document upload: ``multipart/form-data`` with the file and its kind."""

    file = FileField(
        required=True,
        metadata={
            "description": "JPEG、PNG、HEIC/HEIF 图片或 PDF，至多 10 MB（DOCUMENT_MAX_BYTES）；"
            "类型按内容判断，图片去除元数据后重新编码"
        },
    )
    kind = ma.fields.String(
        required=True, validate=ma.validate.OneOf(FILE_KINDS), metadata={"description": _KINDS_DOC}
    )
    note = Text(max_length=500, multiline=True)


class KindSchema(Schema):
    kind = ma.fields.String(required=True)
    label = ma.fields.String(required=True)


class DocumentSchema(Schema):
    """A document on file (the bytes: ``GET .../documents/{document_id}``)."""

    id = ma.fields.Integer(dump_only=True)
    case_id = ma.fields.UUID(dump_only=True)
    kind = ma.fields.String(dump_only=True)
    kind_label = ma.fields.Function(lambda d: KINDS.get(d.kind), dump_only=True)
    note = ma.fields.String(dump_only=True, allow_none=True)
    content_type = ma.fields.String(dump_only=True, allow_none=True)
    size_bytes = ma.fields.Integer(dump_only=True, allow_none=True)
    sha256 = ma.fields.String(dump_only=True, allow_none=True)
    added_by_role = ma.fields.String(
        dump_only=True, allow_none=True, metadata={"description": "resident, duty, supervisor"}
    )
    created_at = LocalDateTime(dump_only=True)
    purged_at = LocalDateTime(dump_only=True, allow_none=True)
    thumbnail = ma.fields.Function(
        lambda d: d.storage_key is not None and (d.content_type or "").startswith("image/"),
        dump_only=True,
        metadata={"description": "has a thumbnail (.../thumbnail)"},
    )


class DocumentsSchema(Schema):
    """A case's checklist at its current stage, and the documents on file."""

    stage = ma.fields.String(
        dump_only=True, metadata={"description": "decide（审批前）或 close（办结前）"}
    )
    required = ma.fields.List(ma.fields.Nested(KindSchema), dump_only=True)
    present = ma.fields.List(ma.fields.Nested(KindSchema), dump_only=True)
    missing = ma.fields.List(ma.fields.Nested(KindSchema), dump_only=True)
    complete = ma.fields.Boolean(dump_only=True)
    commitment_allowed = ma.fields.Boolean(dump_only=True)
    decided_on_commitment = ma.fields.Boolean(
        dump_only=True,
        metadata={"description": "a required proof is on file only as the commitment"},
    )
    by_commitment = ma.fields.List(ma.fields.Nested(KindSchema), dump_only=True)
    documents = ma.fields.List(ma.fields.Nested(DocumentSchema), dump_only=True)


class CommitmentSchema(Schema):
    """The commitment (承诺书) the app shows before the resident signs."""

    text = ma.fields.String(dump_only=True)
    text_sha256 = ma.fields.String(dump_only=True)
    allowed = ma.fields.Boolean(dump_only=True)
    replaces = ma.fields.List(ma.fields.Nested(KindSchema), dump_only=True)
    signed_at = LocalDateTime(dump_only=True, allow_none=True)


class CommitmentSignSchema(Schema):
    """The resident's confirmation of the text they were shown."""

    confirm = ma.fields.Boolean(required=True, truthy={True}, falsy={False})
    text_sha256 = ma.fields.String(
        required=True,
        validate=ma.validate.Regexp(r"^[0-9a-f]{64}$", error="必须是 64 位十六进制 SHA-256。"),
        metadata={"description": "GET .../commitment 返回的 text_sha256"},
    )
