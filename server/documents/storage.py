"""Where documents' bytes live: one small interface, two backends chosen by configuration.

``filesystem`` (the embedded default) keeps them under ``DOCUMENT_DIR`` (``instance/documents``);
``s3`` puts them in an S3-compatible bucket (boto3: what a 政务云 offers). Objects are named by
random keys the service makes (``new_key``), never by anything a client sent.
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
from pathlib import Path
from typing import Any, Protocol

from flask import Flask, current_app

from server.errors import DomainError

_KEY = re.compile(r"^[0-9a-f]{32}$")


class StorageUnavailable(DomainError):
    """The store could not be written or read: nothing was saved (503)."""

    status = 503
    code = "storage_unavailable"

    def __init__(self) -> None:
        super().__init__(
            "文件存储暂不可用，本次上传未保存，请稍后重试。",
            message_en="File storage is unavailable; nothing was saved, retry later.",
            headers={"Retry-After": "5"},
        )


class MissingObject(LookupError):
    """The store holds nothing under the key."""


class Storage(Protocol):
    """What the documents service needs of a store."""

    name: str

    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store ``data`` under ``key`` (complete or not at all); StorageUnavailable on failure."""

    def get(self, key: str) -> bytes:
        """The bytes under ``key``; MissingObject when absent, StorageUnavailable on failure."""

    def delete(self, key: str) -> None:
        """Remove ``key`` (nothing happens when absent); StorageUnavailable on failure."""


def new_key() -> str:
    """A fresh random object name (128 bits)."""
    return secrets.token_hex(16)


def _checked(key: str) -> str:
    if not _KEY.match(key):
        raise ValueError("not a document key")
    return key


class FilesystemStorage:
    """Files under ``root``, fanned out by the key's first two characters."""

    name = "filesystem"

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        """Where ``key`` lives."""
        key = _checked(key)
        return self.root / key[:2] / key

    def put(self, key: str, data: bytes, content_type: str) -> None:
        target = self.path(key)
        tmp = None
        try:
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # Written beside the target and renamed: a reader never sees half a file, and a
            # failure part-way leaves no file under the key.
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
            tmp = None
        except OSError as exc:
            raise StorageUnavailable() from exc
        finally:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)

    def get(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            raise MissingObject(key) from None
        except OSError as exc:
            raise StorageUnavailable() from exc

    def delete(self, key: str) -> None:
        try:
            self.path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise StorageUnavailable() from exc


class S3Storage:
    """Objects in an S3-compatible bucket, under ``prefix``."""

    name = "s3"

    def __init__(
        self,
        *,
        bucket: str,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        prefix: str = "",
    ) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region or None,
            aws_access_key_id=access_key_id or None,
            aws_secret_access_key=secret_access_key or None,
            config=Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 3}),
        )

    def _object(self, key: str) -> str:
        return self.prefix + _checked(key)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.put_object(
                Bucket=self.bucket, Key=self._object(key), Body=data, ContentType=content_type
            )
        except (BotoCoreError, ClientError) as exc:
            raise StorageUnavailable() from exc

    def get(self, key: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self._object(key))
            return answer["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                raise MissingObject(key) from None
            raise StorageUnavailable() from exc
        except BotoCoreError as exc:
            raise StorageUnavailable() from exc

    def delete(self, key: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._object(key))
        except (BotoCoreError, ClientError) as exc:
            raise StorageUnavailable() from exc


_SETTINGS = (
    "DOCUMENT_STORAGE",
    "DOCUMENT_DIR",
    "DOCUMENT_S3_BUCKET",
    "DOCUMENT_S3_ENDPOINT_URL",
    "DOCUMENT_S3_REGION",
    "DOCUMENT_S3_ACCESS_KEY_ID",
    "DOCUMENT_S3_SECRET_ACCESS_KEY",
    "DOCUMENT_S3_PREFIX",
)


def build(config: Any) -> Storage:
    """The store the settings in ``config`` describe."""
    kind = config.get("DOCUMENT_STORAGE") or "filesystem"
    if kind == "filesystem":
        return FilesystemStorage(config["DOCUMENT_DIR"])
    if kind == "s3":
        if not config.get("DOCUMENT_S3_BUCKET"):
            raise RuntimeError("DOCUMENT_S3_BUCKET must be set when DOCUMENT_STORAGE=s3")
        return S3Storage(
            bucket=config["DOCUMENT_S3_BUCKET"],
            endpoint_url=config.get("DOCUMENT_S3_ENDPOINT_URL"),
            region=config.get("DOCUMENT_S3_REGION"),
            access_key_id=config.get("DOCUMENT_S3_ACCESS_KEY_ID"),
            secret_access_key=config.get("DOCUMENT_S3_SECRET_ACCESS_KEY"),
            prefix=config.get("DOCUMENT_S3_PREFIX") or "",
        )
    raise RuntimeError(f"DOCUMENT_STORAGE must be 'filesystem' or 's3', not {kind!r}")


def storage(app: Flask | None = None) -> Storage:
    """The app's document store (built once per distinct setting, then reused)."""
    app = app or current_app
    settings = tuple(app.config.get(name) for name in _SETTINGS)
    cached = app.extensions.get("aidline.documents.storage")
    if cached is None or cached[0] != settings:
        cached = (settings, build(app.config))
        app.extensions["aidline.documents.storage"] = cached
    return cached[1]
