"""The one skuport-owned folder for temporary export files, swept of dead processes' leftovers.

Each process writes under ``<SKUPORT_TMP_DIR or data dir/tmp>/<host>-<pid>/``; at start-up,
:func:`sweep` removes the folders of processes of this host that no longer exist (killed with -9,
crashed), so no partial export file outlives its process.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import socket
from pathlib import Path

from skuport.config import get_settings
from skuport.errors import SkuportError

log = logging.getLogger(__name__)

_HOST = socket.gethostname().replace("-", "_")


class LocalResourceError(SkuportError):
    """This server could not write a file it needed (disk full, read-only, permission denied)."""

    status_code = 507
    code = "local_resource_error"


def root() -> Path:
    """The folder holding every process's temporary export files."""
    settings = get_settings()
    return (settings.tmp_dir or settings.data_dir / "tmp").resolve()


def work_dir() -> Path:
    """This process's folder for temporary export files (created on first use)."""
    folder = root() / f"{_HOST}-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise local_resource_error(exc, folder, setting="SKUPORT_TMP_DIR") from exc
    return folder


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep() -> int:
    """Remove the temporary folders of this host's processes that are gone; returns how many."""
    base = root()
    if not base.is_dir():
        return 0
    removed = 0
    for entry in base.iterdir():
        host, _, pid = entry.name.rpartition("-")
        if host != _HOST or not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
            continue
        with contextlib.suppress(OSError):
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
            removed += 1
    if removed:
        log.info("removed the temporary export files of %d stopped process(es) from %s", removed, base)
    return removed


_REASONS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is exhausted",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
}


def local_resource_error(exc: OSError, folder: Path, *, setting: str) -> SkuportError | OSError:
    """A clear error for a local disk failure (naming the folder and the setting that moves it)."""
    reason = _REASONS.get(exc.errno or 0)
    if reason is None:
        return exc
    return LocalResourceError(
        f"Could not write the export file: {reason} in {folder}. Free space or fix the permissions there, "
        f"or set {setting} to another folder."
    )
