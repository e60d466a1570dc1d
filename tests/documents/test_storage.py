"""The two stores behind one interface: complete objects or none, random keys only."""

from __future__ import annotations

import os

import pytest

from server.documents.storage import (
    FilesystemStorage,
    MissingObject,
    S3Storage,
    StorageUnavailable,
    build,
    new_key,
)
from tests.documents.conftest import s3_config


@pytest.fixture(params=["filesystem", "s3"])
def store(request, tmp_path):
    if request.param == "filesystem":
        return FilesystemStorage(tmp_path / "docs")
    config = request.getfixturevalue("s3_bucket")
    return build(config)


def test_put_get_delete(store):
    key = new_key()
    store.put(key, b"%PDF-1.7 ...", "application/pdf")
    assert store.get(key) == b"%PDF-1.7 ..."
    store.delete(key)
    with pytest.raises(MissingObject):
        store.get(key)
    store.delete(key)  # deleting what is gone is no error


def test_keys_are_random_and_nothing_else_is_a_key(store):
    assert len({new_key() for _ in range(100)}) == 100
    for bad in ("../../../../etc/passwd", "a" * 31, "A" * 32, "", "x/" + "a" * 30):
        with pytest.raises(ValueError):
            store.get(bad)


def test_s3_objects_are_under_the_prefix_with_their_type(s3_bucket):
    store = build(s3_bucket)
    key = new_key()
    store.put(key, b"\x89PNG...", "image/png")
    head = store.client.head_object(Bucket=store.bucket, Key=f"documents/{key}")
    assert head["ContentType"] == "image/png"


def test_a_filesystem_failure_part_way_leaves_no_file(tmp_path, monkeypatch):
    store = FilesystemStorage(tmp_path / "docs")

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    key = new_key()
    with pytest.raises(StorageUnavailable):
        store.put(key, b"x" * 100_000, "image/jpeg")
    assert [p for p in (tmp_path / "docs").rglob("*") if p.is_file()] == []


def test_an_unreachable_or_missing_bucket_is_storage_unavailable(s3_endpoint):
    store = build(s3_config(s3_endpoint, "no-such-bucket"))
    with pytest.raises(StorageUnavailable) as failed:
        store.put(new_key(), b"data", "image/png")
    assert failed.value.status == 503
    down = S3Storage(
        bucket="b",
        endpoint_url="http://127.0.0.1:9",  # nothing listens on the discard port
        region="cn-north-1",
        access_key_id="testing",
        secret_access_key="testing",
    )
    with pytest.raises(StorageUnavailable):
        down.put(new_key(), b"data", "image/png")


def test_the_setting_chooses_the_backend(tmp_path):
    assert build({"DOCUMENT_STORAGE": "filesystem", "DOCUMENT_DIR": str(tmp_path)}).name == (
        "filesystem"
    )
    with pytest.raises(RuntimeError):
        build({"DOCUMENT_STORAGE": "s3"})  # no bucket
    with pytest.raises(RuntimeError):
        build({"DOCUMENT_STORAGE": "ftp"})
