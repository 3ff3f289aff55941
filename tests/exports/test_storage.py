"""Export storage backends: the local folder and S3 (against a real moto server)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest

from skuport.exports.storage import (
    STORAGES,
    LocalStorage,
    S3Storage,
    StorageConfigError,
    StorageError,
    check_key,
    get_storage,
)


def _file(tmp_path: Path, size: int) -> Path:
    path = tmp_path / "source.bin"
    path.write_bytes(os.urandom(size))
    return path


@pytest.mark.parametrize("key", ["../x", "a/../../b", "/etc/passwd", "a//b", "", ".hidden", "a/./b", "a\\b"])
def test_keys_that_could_escape_the_root_are_refused(key: str) -> None:
    with pytest.raises(ValueError):
        check_key(key)


def test_local_storage_round_trip(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "root")
    source = _file(tmp_path, 3 * 1024 * 1024 + 17)
    storage.put(key="exp-a/exp-a.csv", source=source, content_type="text/csv")
    assert storage.exists(key="exp-a/exp-a.csv")
    assert storage.local_path(key="exp-a/exp-a.csv") == tmp_path / "root" / "exp-a" / "exp-a.csv"
    assert b"".join(storage.stream(key="exp-a/exp-a.csv")) == source.read_bytes()
    assert not list((tmp_path / "root" / "exp-a").glob(".*.part"))
    storage.delete(key="exp-a/exp-a.csv")
    storage.delete(key="exp-a/exp-a.csv")  # idempotent
    assert not storage.exists(key="exp-a/exp-a.csv")
    assert storage.local_path(key="exp-a/exp-a.csv") is None
    assert not (tmp_path / "root" / "exp-a").exists()
    with pytest.raises(FileNotFoundError):
        storage.stream(key="exp-a/exp-a.csv")


def test_local_storage_reports_write_failures(tmp_path: Path) -> None:
    blocker = tmp_path / "blocked"
    blocker.write_text("a file where the root folder should be")
    with pytest.raises(StorageError):
        LocalStorage(blocker).put(key="exp-a/f.csv", source=_file(tmp_path, 10), content_type="text/csv")


def test_s3_storage_round_trip_with_multipart(tmp_path: Path, moto_endpoint: str, bucket: str) -> None:
    storage = S3Storage(
        bucket=bucket,
        prefix="one-off/",
        endpoint_url=moto_endpoint,
        region="us-east-1",
        access_key_id="testing",
        secret_access_key="testing",
    )
    source = _file(tmp_path, 12 * 1024 * 1024)  # over boto3's 8 MiB threshold: a multipart upload
    storage.put(key="exp-a/exp-a.xlsx", source=source, content_type="application/vnd.ms-excel")
    raw = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    head = raw.head_object(Bucket=bucket, Key="one-off/exp-a/exp-a.xlsx")
    assert head["ContentLength"] == source.stat().st_size
    assert head["ContentType"] == "application/vnd.ms-excel"
    assert head["ETag"].strip('"').endswith("-2")
    assert storage.exists(key="exp-a/exp-a.xlsx")
    assert storage.local_path(key="exp-a/exp-a.xlsx") is None
    assert b"".join(storage.stream(key="exp-a/exp-a.xlsx")) == source.read_bytes()
    storage.delete(key="exp-a/exp-a.xlsx")
    assert not storage.exists(key="exp-a/exp-a.xlsx")
    with pytest.raises(FileNotFoundError):
        storage.stream(key="exp-a/exp-a.xlsx")


def test_s3_missing_bucket_is_a_storage_error(tmp_path: Path, moto_endpoint: str, bucket: str) -> None:
    storage = S3Storage(
        bucket=bucket + "-missing",
        endpoint_url=moto_endpoint,
        region="us-east-1",
        access_key_id="testing",
        secret_access_key="testing",
    )
    with pytest.raises(StorageError, match="missing"):
        storage.put(key="exp-a/f.csv", source=_file(tmp_path, 10), content_type="text/csv")


def test_the_registry_builds_the_configured_backend(configure: Callable[..., None], tmp_path: Path) -> None:
    assert set(STORAGES) == {"local", "s3"}
    configure(export_storage="local", export_dir=tmp_path / "files")
    local = get_storage()
    assert isinstance(local, LocalStorage) and local.root == tmp_path / "files"
    configure(export_storage="s3")
    with pytest.raises(StorageConfigError, match="SKUPORT_EXPORT_S3_BUCKET"):
        get_storage()
    configure(export_storage="ftp")
    with pytest.raises(StorageConfigError, match="unknown export storage"):
        get_storage()
