"""Split exports: the names of their parts and the manifest that lists them (delivered last).

A part is the file's name with ``-001``, ``-002``, ... before its extension (``products-2026-03-08.csv.gz``
-> ``products-2026-03-08-001.csv.gz``); the manifest is the name without its extension plus
``.manifest.json``. :func:`read_manifest` is the inverse a reader (or an import) uses to check a delivery.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import tempfile
import threading
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from skuport.exporting.spec import ExportCancelled, ExportFile, ExportResult

MANIFEST_VERSION = 1
MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_MEDIA_TYPE = "application/json"


def _stem_and_tail(filename: str, extension: str) -> tuple[str, str]:
    """``filename`` cut before its extension: the export's own (``.csv.gz``), else the last ``.x``."""
    if filename.endswith("." + extension) and len(filename) > len(extension) + 1:
        return filename[: -len(extension) - 1], "." + extension
    folder, slash, name = filename.rpartition("/")
    stem, dot, tail = name.rpartition(".")
    if not dot or not stem:
        return filename, ""
    return folder + slash + stem, "." + tail


def part_name(filename: str, *, index: int, count: int, extension: str) -> str:
    """The name of part ``index`` (from 1) of ``count``: ``-001`` before the extension (more digits past
    999 parts)."""
    stem, tail = _stem_and_tail(filename, extension)
    return f"{stem}-{index:0{max(3, len(str(count)))}d}{tail}"


def manifest_name(filename: str, *, extension: str) -> str:
    """The manifest's name: the file's name without its extension, plus ``.manifest.json``."""
    return _stem_and_tail(filename, extension)[0] + MANIFEST_SUFFIX


def file_names(filename: str, result: ExportResult) -> list[str]:
    """The name each of ``result``'s files is delivered under (the name itself when it was not split)."""
    if not result.split:
        return [filename]
    count = len(result.files)
    return [
        part_name(filename, index=i, count=count, extension=result.extension) for i in range(1, count + 1)
    ]


@dataclass(frozen=True)
class Delivered:
    """One file of an export as delivered: its name, where it landed, and its content."""

    name: str
    path: str
    file: ExportFile

    def entry(self) -> dict[str, Any]:
        """The file as the manifest and the run history list it."""
        return {
            "name": self.name.rpartition("/")[2],
            "path": self.path,
            "recordCount": self.file.row_count,
            "byteSize": self.file.file_size,
            "sha256": self.file.sha256,
        }


def manifest(
    files: Sequence[Delivered],
    result: ExportResult,
    *,
    selection: Mapping[str, Any],
    run: Mapping[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> bytes:
    """The manifest of a delivery: every file in order, the run (``jobId``, ``runId``, ``scheduledFor``)
    and the selection that made them."""
    document: dict[str, Any] = {
        "manifestVersion": MANIFEST_VERSION,
        **(run or {}),
        "createdAt": (now or dt.datetime.now(dt.UTC)).isoformat().replace("+00:00", "Z"),
        "mediaType": result.media_type,
        "recordCount": result.record_count,
        "fileCount": len(files),
        "files": [f.entry() for f in files],
        "selection": dict(selection),
    }
    return orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z)


def read_manifest(data: bytes, folder: Path | None = None) -> dict[str, Any]:
    """Parse a manifest; with ``folder`` (where its parts are), check every part's size and SHA-256."""
    document: dict[str, Any] = orjson.loads(data)
    if document.get("manifestVersion") != MANIFEST_VERSION:
        raise ValueError(f"not a version {MANIFEST_VERSION} skuport manifest")
    if folder is not None:
        for entry in document["files"]:
            content = (folder / entry["name"]).read_bytes()
            if len(content) != entry["byteSize"] or hashlib.sha256(content).hexdigest() != entry["sha256"]:
                raise ValueError(f"part {entry['name']} does not match the manifest")
    return document


def archive(
    result: ExportResult,
    filename: str,
    *,
    selection: Mapping[str, Any],
    run: Mapping[str, Any] | None,
    with_manifest: bool,
    folder: Path,
    cancel: threading.Event | None = None,
) -> ExportResult:
    """One zip holding ``result``'s files (named from ``filename``) and, with ``with_manifest``, the
    manifest last: how a one-off export, which is one download, carries its parts. Gzipped parts are
    stored as they are; others are deflated. ``result``'s own files are deleted; a ``cancel`` stops
    between members."""
    from skuport.exporting import workdir

    names = file_names(filename, result)
    method = zipfile.ZIP_STORED if result.content_encoding == "gzip" else zipfile.ZIP_DEFLATED
    path: Path | None = None
    try:
        fd, name = tempfile.mkstemp(prefix="skuport-export-", suffix=".zip", dir=folder)
        os.close(fd)
        path = Path(name)
        with zipfile.ZipFile(path, "w", compression=method, compresslevel=3) as zf:
            for member, file in zip(names, result.files, strict=True):
                if cancel is not None and cancel.is_set():
                    raise ExportCancelled("Export cancelled while its parts were being zipped.")
                zf.write(file.path, arcname=member)
            if with_manifest:
                delivered = [
                    Delivered(name=n, path=n, file=f) for n, f in zip(names, result.files, strict=True)
                ]
                document = manifest(delivered, result, selection=selection, run=run)
                zf.writestr(
                    manifest_name(filename, extension=result.extension),
                    document,
                    compress_type=zipfile.ZIP_DEFLATED,
                )
        digest, size = hashlib.sha256(), 0
        with path.open("rb") as done:
            while chunk := done.read(1024 * 1024):
                digest.update(chunk)
                size += len(chunk)
    except OSError as exc:
        if path is not None:
            path.unlink(missing_ok=True)
        raise workdir.local_resource_error(exc, folder, setting="SKUPORT_TMP_DIR") from exc
    except BaseException:
        if path is not None:
            path.unlink(missing_ok=True)
        raise
    finally:
        result.discard()
    return ExportResult(
        files=(
            ExportFile(path=path, row_count=result.record_count, file_size=size, sha256=digest.hexdigest()),
        ),
        record_count=result.record_count,
        content_type="application/zip",
        extension="zip",
        tombstone_count=result.tombstone_count,
    )
