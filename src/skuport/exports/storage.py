"""Where one-off export files are kept: a local folder (embedded mode) or an S3 bucket (scale-out).

Each backend is a small class implementing :class:`ExportStorage`, registered in :data:`STORAGES`
under the name ``SKUPORT_EXPORT_STORAGE`` accepts. Keys are relative, slash-separated names
chosen by the service (``exp-…/catalog.csv``); a backend never sees user input as a path.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from skuport.config import Settings, get_settings

CHUNK_SIZE = 1024 * 1024
_SAFE_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)*$")


class StorageError(Exception):
    """The storage backend could not keep or hand back a file."""


class StorageConfigError(ValueError):
    """The storage settings are incomplete or unknown."""


def check_key(key: str) -> str:
    """Refuse keys that could leave the storage root (``..``, absolute paths, odd characters)."""
    if not _SAFE_KEY.match(key) or any(part in (".", "..") for part in key.split("/")):
        raise ValueError(f"unsafe storage key {key!r}")
    return key


class ExportStorage(Protocol):
    """Keeps export files by key."""

    name: str

    def put(self, *, key: str, source: Path, content_type: str) -> None:
        """Store the file at ``source`` under ``key`` (the object appears only when complete)."""

    def stream(self, *, key: str) -> Iterator[bytes]:
        """The stored bytes, chunk by chunk; :class:`FileNotFoundError` when missing."""

    def local_path(self, *, key: str) -> Path | None:
        """A local file holding the object when the backend has one (served with sendfile)."""

    def exists(self, *, key: str) -> bool:
        """Whether an object is stored under ``key``."""

    def delete(self, *, key: str) -> None:
        """Remove the object; a missing object is not an error."""


class LocalStorage:
    """Files in a folder of the data dir; writes go to a temporary name, then rename."""

    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, *, key: str, source: Path, content_type: str) -> None:
        """Copy (or move, on the same file system) the file into place atomically."""
        target = self._path(key)
        partial = target.with_name(f".{target.name}.part")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, partial)
            os.replace(partial, target)
        except OSError as exc:
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)
            raise StorageError(f"could not write the export file: {exc.strerror or exc}") from exc

    def stream(self, *, key: str) -> Iterator[bytes]:
        """Read the file in chunks."""
        path = self._path(key)
        handle = path.open("rb")

        def chunks() -> Iterator[bytes]:
            with handle:
                while chunk := handle.read(CHUNK_SIZE):
                    yield chunk

        return chunks()

    def local_path(self, *, key: str) -> Path | None:
        """The file itself."""
        path = self._path(key)
        return path if path.is_file() else None

    def exists(self, *, key: str) -> bool:
        """Whether the file is there."""
        return self._path(key).is_file()

    def delete(self, *, key: str) -> None:
        """Remove the file and its folder when empty."""
        path = self._path(key)
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            path.parent.rmdir()


class S3Storage:
    """Objects in an S3 bucket, shared by every replica of the scale-out mode."""

    name = "s3"

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str = "",
        region: str | None = None,
        endpoint_url: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
    ) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client: Any = boto3.client(
            "s3",
            region_name=region,
            endpoint_url=endpoint_url,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=Config(retries={"total_max_attempts": 3, "mode": "standard"}),
        )

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def put(self, *, key: str, source: Path, content_type: str) -> None:
        """Upload (multipart past 8 MiB); S3 shows the object only once the upload completes."""
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.upload_file(
                str(source), self.bucket, self._key(key), ExtraArgs={"ContentType": content_type}
            )
        except (BotoCoreError, ClientError, S3UploadFailedError) as exc:
            raise StorageError(f"could not upload the export file to s3://{self.bucket}: {exc}") from exc

    def stream(self, *, key: str) -> Iterator[bytes]:
        """Stream the object's body."""
        from botocore.exceptions import ClientError

        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise FileNotFoundError(key) from exc
            raise StorageError(f"could not read s3://{self.bucket}/{self._key(key)}: {exc}") from exc
        body = response["Body"]

        def chunks() -> Iterator[bytes]:
            try:
                yield from body.iter_chunks(CHUNK_SIZE)
            finally:
                body.close()

        return chunks()

    def local_path(self, *, key: str) -> Path | None:
        """Objects have no local path."""
        return None

    def exists(self, *, key: str) -> bool:
        """HEAD the object."""
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return False
            raise StorageError(f"could not reach s3://{self.bucket}: {exc}") from exc
        return True

    def delete(self, *, key: str) -> None:
        """Delete the object (S3 deletes are idempotent)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"could not delete s3://{self.bucket}/{self._key(key)}: {exc}") from exc


def _local(settings: Settings) -> ExportStorage:
    return LocalStorage(settings.export_dir or settings.data_dir / "export-files")


def _s3(settings: Settings) -> ExportStorage:
    if not settings.export_s3_bucket:
        raise StorageConfigError("SKUPORT_EXPORT_STORAGE=s3 needs SKUPORT_EXPORT_S3_BUCKET.")
    return S3Storage(
        bucket=settings.export_s3_bucket,
        prefix=settings.export_s3_prefix,
        region=settings.export_s3_region,
        endpoint_url=settings.export_s3_endpoint_url,
        access_key_id=settings.export_s3_access_key_id,
        secret_access_key=settings.export_s3_secret_access_key,
    )


STORAGES: dict[str, Callable[[Settings], ExportStorage]] = {
    "local": _local,
    "s3": _s3,
}
"""Backend name (``SKUPORT_EXPORT_STORAGE``) -> factory from the settings."""


_built: dict[tuple[Any, ...], ExportStorage] = {}


def get_storage(name: str | None = None) -> ExportStorage:
    """The storage backend ``name`` (default: the configured one), built once per configuration."""
    settings = get_settings()
    name = name or settings.export_storage
    if name not in STORAGES:
        raise StorageConfigError(f"unknown export storage {name!r} (known: {', '.join(STORAGES)})")
    key = (
        name,
        settings.data_dir,
        settings.export_dir,
        settings.export_s3_bucket,
        settings.export_s3_prefix,
        settings.export_s3_region,
        settings.export_s3_endpoint_url,
        settings.export_s3_access_key_id,
    )
    if key not in _built:
        _built[key] = STORAGES[name](settings)
    return _built[key]
