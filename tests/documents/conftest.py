"""Fixtures of the documents tests: a local S3-compatible server (moto, on 127.0.0.1, never
the internet), each test's own bucket or directory, and the app set to either store."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from server.documents.storage import S3Storage

S3_KEYS = {"DOCUMENT_S3_ACCESS_KEY_ID": "testing", "DOCUMENT_S3_SECRET_ACCESS_KEY": "testing"}


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 in server mode, in a thread of this process, on a free local port."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def s3_config(endpoint: str, bucket: str) -> dict[str, Any]:
    return {
        "DOCUMENT_STORAGE": "s3",
        "DOCUMENT_S3_BUCKET": bucket,
        "DOCUMENT_S3_ENDPOINT_URL": endpoint,
        "DOCUMENT_S3_REGION": "cn-north-1",
        "DOCUMENT_S3_PREFIX": "documents/",
        **S3_KEYS,
    }


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> Iterator[dict[str, Any]]:
    """A fresh bucket; its settings (``DOCUMENT_*``) for an app."""
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    config = s3_config(s3_endpoint, bucket)
    store = S3Storage(
        bucket=bucket,
        endpoint_url=s3_endpoint,
        region="cn-north-1",
        access_key_id="testing",
        secret_access_key="testing",
    )
    store.client.create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "cn-north-1"}
    )
    yield config


@pytest.fixture(params=["filesystem", "s3"])
def backend(request, app, tmp_path) -> str:
    """The app stores documents on the filesystem (under tmp_path) or in a fresh S3 bucket."""
    if request.param == "filesystem":
        app.config.update(DOCUMENT_STORAGE="filesystem", DOCUMENT_DIR=str(tmp_path / "docs"))
    else:
        app.config.update(request.getfixturevalue("s3_bucket"))
    return request.param


def stored_objects(app) -> list[str]:
    """Every object the app's store holds (file paths, or S3 keys)."""
    from server.documents.storage import storage

    store = storage(app)
    if store.name == "filesystem":
        root = store.root
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    answer = store.client.list_objects_v2(Bucket=store.bucket)
    return sorted(o["Key"] for o in answer.get("Contents", []))
