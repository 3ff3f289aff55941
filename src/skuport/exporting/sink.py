"""The output side: a writer thread that gzips (optionally), hashes and writes, overlapped with flattening.

ISA-L (isal), hashlib and file writes release the GIL, so compressing one batch runs on the second core
while the main thread reads the next. The queue is bounded: memory stays flat whatever the export size.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

from isal import isal_zlib

GZIP_LEVEL = 3
"""ISA-L level (0-3). On a 25 MB csv of product data, level 3 writes 6.25 MB at 0.6 µs a record, where
zlib needs 1.6 µs at its level 3 for 6.19 MB (bench/README.md)."""
_QUEUE_DEPTH = 2
_STOP = object()


class HashingFile:
    """A write-only file that counts and hashes what is written (the bytes of the final file)."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.size = 0
        self.sha256 = hashlib.sha256()

    def write(self, data: bytes) -> int:
        """Write, hash and count."""
        self.raw.write(data)
        self.sha256.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        """Flush the file."""
        self.raw.flush()


class GzipWriter:
    """A gzip stream (RFC 1952, compressed by Intel's ISA-L through isal) written into another stream."""

    def __init__(self, target: HashingFile, level: int = GZIP_LEVEL) -> None:
        self.target = target
        self._compressor = isal_zlib.compressobj(level, isal_zlib.DEFLATED, 31)

    def write(self, data: bytes) -> int:
        """Compress and pass on."""
        out = self._compressor.compress(data)
        if out:
            self.target.write(out)
        return len(data)

    def flush(self) -> None:
        """Nothing to do until close."""

    def close(self) -> None:
        """Write the gzip trailer."""
        self.target.write(self._compressor.flush())


class Sink:
    """Receives encoded chunks; a background thread compresses, hashes and writes them to ``path``."""

    def __init__(self, path: Path, *, compress: bool, container: Any) -> None:
        self.path = path
        self._file = path.open("wb")
        self.hashing = HashingFile(self._file)
        self._gzip = GzipWriter(self.hashing) if compress else None
        self._container_cm = container(self._gzip or self.hashing)
        self._stream: Any = self._container_cm.__enter__()
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=_QUEUE_DEPTH)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="skuport-export-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            chunk = self._queue.get()
            if chunk is _STOP:
                return
            if self._error is None:
                try:
                    self._stream.write(chunk)
                except BaseException as exc:  # surfaced to the producer by put()/close()
                    self._error = exc

    def put(self, chunk: bytes) -> None:
        """Queue a chunk (blocks while the writer is behind)."""
        if self._error is not None:
            raise self._error
        if chunk:
            self._queue.put(chunk)

    def close(self) -> tuple[int, str]:
        """Finish the file; return (size, sha256 hex)."""
        self._queue.put(_STOP)
        self._thread.join()
        if self._error is not None:
            self.abort()
            raise self._error
        self._container_cm.__exit__(None, None, None)
        if self._gzip is not None:
            self._gzip.close()
        self._file.close()
        return self.hashing.size, self.hashing.sha256.hexdigest()

    def abort(self) -> None:
        """Stop the writer and delete the partial file."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()
        try:
            self._container_cm.__exit__(None, None, None)
        except Exception:  # the partial file is deleted anyway
            pass
        self._file.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> Sink:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self.abort()
