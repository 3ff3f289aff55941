"""The local destination: a folder under ``SKUPORT_LOCAL_ROOT`` (default ``exports/`` in the data dir)."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, field_validator

from skuport.config import get_settings
from skuport.exporting.destinations.base import (
    Delivery,
    DeliveryError,
    DestinationConfig,
    Fence,
    check_relative_path,
    join_key,
    parse_config,
)

log = logging.getLogger(__name__)


class LocalConfig(DestinationConfig):
    """``path``: a folder relative to the local root."""

    path: str = ""

    @field_validator("path")
    @classmethod
    def _relative(cls, value: str) -> str:
        if value.startswith("/"):
            raise ValueError("path must be relative to the local root (SKUPORT_LOCAL_ROOT), not absolute")
        return check_relative_path(value, what="path")


def local_root() -> Path:
    """The folder every local delivery lands under."""
    settings = get_settings()
    return (settings.local_root or settings.data_dir / "exports").resolve()


class LocalDestination:
    """Write into a folder on this server: a temporary file, then an atomic rename."""

    config_model: ClassVar[type[BaseModel]] = LocalConfig
    type: ClassVar[str] = "local"
    secret_fields: ClassVar[frozenset[str]] = frozenset()
    can_remove: ClassVar[bool] = True

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = parse_config(LocalConfig, config, type_=self.type)

    def _target(self, filename: str) -> Path:
        """The final path of ``filename``, refused if it (or a symlink on the way) leaves the root."""
        root = local_root()
        try:
            check_relative_path(filename, what="file name", allow_empty=False)
        except ValueError as exc:
            raise DeliveryError(f"Local delivery refused: {exc}.") from None
        target = (root / join_key(self.config.path, filename)).resolve()
        if not target.is_relative_to(root) or target == root:
            raise DeliveryError(
                f"Local delivery refused: '{join_key(self.config.path, filename)}' resolves outside the "
                f"local root {root} (a symlink?). Check the destination path and the links under the root."
            )
        return target

    def destination_path(self, filename: str) -> str:
        """``file://`` URL of where ``filename`` lands."""
        return self._target(filename).as_uri()

    def test_connection(self) -> None:
        """Check the folder exists (creating it) and is writable."""
        folder = self._target(".skuport-write-test").parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".skuport-test-"):
                pass
        except OSError as exc:
            raise DeliveryError(
                f"Local write test failed: {exc.strerror or exc} in {folder}. "
                "Check that the folder exists and the skuport user may write to it."
            ) from None

    def deliver(self, delivery: Delivery) -> str:
        """Copy the file next to its final name, fsync, then rename it into place (under the lease)."""
        target = self._target(delivery.filename)
        tmp: Path | None = None
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            # Re-check after creating folders: a symlinked folder must not lead out of the root.
            target = self._target(delivery.filename)
            # Named after the delivery: a retry overwrites what a killed attempt left.
            tmp = target.with_name(f".{target.name}{delivery.part_suffix}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
            with os.fdopen(fd, "wb") as out, delivery.path.open("rb") as src:
                while chunk := src.read(1024 * 1024):
                    delivery.between_chunks()
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o644)
            delivery.before_visible()
            os.replace(tmp, target)
            tmp = None
        except OSError as exc:
            raise DeliveryError(
                f"Local write failed: {exc.strerror or exc} for {target}. Check free disk space and that "
                "the skuport user may write to the folder, or set SKUPORT_LOCAL_ROOT to another folder."
            ) from None
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    tmp.unlink()
        log.info("delivered %s to %s", delivery.filename, target)
        return target.as_uri()

    def remove(self, filenames: Sequence[str], fence: Fence) -> None:
        """Delete these files where present."""
        for filename in filenames:
            target = self._target(filename)
            fence.check()
            try:
                target.unlink(missing_ok=True)
            except OSError as exc:
                raise DeliveryError(f"Local delete failed: {exc.strerror or exc} for {target}.") from None
            log.info("removed %s", target)
