"""The ``one-off-export`` task and its housekeeping: run an export under its lease, expire old files.

A one-off export is work of the one lifecycle (:mod:`skuport.scheduling.lifecycle`): ``pending``
is queued, ``in_progress`` is running under a lease (heartbeat, progress, fence). An export whose
worker was lost or shut down goes back to ``pending`` (next attempt) until the attempts run out;
an interrupt or a delete stops the pipeline at its next batch and nothing is stored.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import ColumnElement, and_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from skuport.config import get_settings
from skuport.db import session_scope, utcnow
from skuport.errors import SkuportError, WorkStopped
from skuport.exports.models import Export, ExportStatus
from skuport.scheduling.executor import enqueue, task
from skuport.scheduling.lifecycle import LIFECYCLE, Failure, Lease, WorkKind, rowcount, shutdown_failure

if TYPE_CHECKING:
    from skuport.exporting.spec import ExportResult

log = logging.getLogger(__name__)

TASK_NAME = "one-off-export"
_MESSAGE_LIMIT = 1000


class ExportWork(WorkKind):
    """One-off exports as work: pending is queued, in_progress is running."""

    task: ClassVar[str] = TASK_NAME
    model: ClassVar[Any] = Export
    queued: ClassVar[str] = ExportStatus.PENDING
    running: ClassVar[str] = ExportStatus.IN_PROGRESS

    def claim_values(self, now: dt.datetime) -> dict[str, Any]:
        """Claiming starts the export."""
        return {"started_at": now, "updated_at": now}

    def log_fields(self, session: Session, ident: str) -> dict[str, Any]:
        """``exportId``."""
        return {"exportId": ident}

    def finished(self, session: Session, ident: str, now: dt.datetime) -> None:
        """A one-off export's file is ready: its notifications (export.completed), in the same transaction."""
        from skuport.jobs import notifications

        notifications.enqueue_export(session, ident, now=now)

    def timeout(self, session: Session, ident: str) -> float:
        """One-off exports share the server's hard timeout."""
        return max(1, get_settings().run_timeout)

    def fail(
        self, session: Session, *, where: ColumnElement[bool], failure: Failure, now: dt.datetime
    ) -> list[str]:
        """Queue a retryable failure again while attempts remain; otherwise fail with an errorsLog."""
        limit = get_settings().run_max_attempts
        changed: list[str] = []
        for ident, attempt in session.execute(select(Export.id, Export.attempt).where(where)).all():
            one = and_(where, Export.id == ident)
            if failure.retry and attempt < limit:
                done = rowcount(
                    session.execute(
                        update(Export)
                        .where(one)
                        .values(
                            status=ExportStatus.PENDING,
                            worker=None,
                            attempt=attempt + 1,
                            heartbeat_at=now,
                            deadline_at=None,
                            updated_at=now,
                        )
                        .execution_options(synchronize_session=False)
                    )
                )
                if done:
                    enqueue(session, TASK_NAME, ident)
                    log.info(
                        "export %s: %s; queued again (attempt %d of %d)",
                        ident,
                        failure.message,
                        attempt + 1,
                        limit,
                    )
            else:
                message = failure.message
                if failure.retry:
                    message += (
                        f"; not retried: attempt {attempt} of {limit} was the last. Create the export again."
                    )
                done = rowcount(
                    session.execute(
                        update(Export)
                        .where(one)
                        .values(
                            status=ExportStatus.FAILED,
                            failed_at=now,
                            updated_at=now,
                            heartbeat_at=now,
                            errors_log={failure.code: message[:_MESSAGE_LIMIT]},
                        )
                        .execution_options(synchronize_session=False)
                    )
                )
                if done:  # its last word: tell who asked
                    from skuport.jobs import notifications

                    notifications.enqueue_export(session, ident, now=now)
            if done:
                changed.append(ident)
        return changed


EXPORTS = ExportWork()
"""The kind of work a one-off export is."""


@task(EXPORTS)
def run_one_off_export(export_id: str) -> None:
    """Claim a pending export, run it through the pipeline and keep its file in the export storage."""
    from skuport.exporting import workdir
    from skuport.exporting.manifest import archive
    from skuport.exporting.pipeline import run_export
    from skuport.exporting.spec import ExportControl
    from skuport.exports.service import build_spec

    lease = LIFECYCLE.claim(EXPORTS, export_id)
    if lease is None:
        return
    result: ExportResult | None = None
    try:
        with session_scope(write=False) as session:
            export = session.get(Export, export_id)
            if export is None:
                LIFECYCLE.release(lease)
                return
            spec = build_spec(export)
            parts = spec.max_records_per_file is not None or export.manifest
            shown = _shown_selection(export) if parts else {}
        result = run_export(
            spec,
            control=ExportControl(progress=lease.progress, cancel=lease.cancel),
            may_split=spec.max_records_per_file is not None,
        )
        if parts:  # one download: the parts (and the manifest) in one zip
            result = archive(
                result,
                f"{export_id}.{result.extension}",
                selection=shown,
                run={"exportId": export_id},
                with_manifest=export.manifest,
                folder=workdir.work_dir(),
                cancel=lease.cancel,
            )
        _store(lease, result)
    except BaseException as exc:
        if lease.cancel.is_set() and lease.reason in ("interrupted", "gone"):
            log.info("export %s stopped: %s", export_id, lease.reason)
            LIFECYCLE.release(lease)
        else:
            failure = describe_failure(exc, lease)
            log.warning(
                "export %s failed: %s",
                export_id,
                failure.message,
                exc_info=not isinstance(exc, SkuportError | WorkStopped),
            )
            LIFECYCLE.fail(lease, failure)
        if not isinstance(exc, Exception):
            raise
    finally:
        if result is not None:
            result.discard()


def _shown_selection(export: Export) -> dict[str, Any]:
    """The export's selection as the API shows it (for the manifest)."""
    from skuport.exporting.selection import stored_selection

    shown: dict[str, Any] = stored_selection(export).model_dump(
        mode="json", by_alias=True, exclude_none=True, warnings=False
    )
    return shown


def _store(lease: Lease, result: ExportResult) -> None:
    """Keep the file and mark the export completed, only while the lease holds (else remove the file)."""
    from skuport.exports.service import file_ttl
    from skuport.exports.storage import get_storage

    export_id = lease.ident
    storage = get_storage()
    extension = result.extension.lstrip(".")
    media_type = result.media_type
    if result.content_encoding == "gzip" and not extension.endswith(".gz"):
        extension += ".gz"
    filename = f"{export_id}.{extension}"
    key = f"{export_id}/{filename}"
    lease.check()
    storage.put(key=key, source=result.path, content_type=media_type)
    now = utcnow()
    stored = LIFECYCLE.finish(
        lease,
        {
            "status": ExportStatus.COMPLETED,
            "completed_at": now,
            "updated_at": now,
            "record_count": result.record_count,
            "progress_done": result.record_count,
            "progress_total": result.record_count,
            "file_size": result.file_size,
            "sha256": result.sha256,
            "content_type": media_type,
            "content_encoding": result.content_encoding,
            "filename": filename,
            "storage_backend": storage.name,
            "storage_key": key,
            "expires_at": now + file_ttl(get_settings()),
        },
    )
    if not stored:
        storage.delete(key=key)


def describe_failure(exc: BaseException, lease: Lease | None = None) -> Failure:
    """An errorsLog entry: the error's kind, a message that says what to do, and whether to retry."""
    from skuport.exports.storage import StorageError

    kind = type(exc).__name__
    if lease is not None and lease.cancel.is_set() and lease.reason == "shutdown":
        return shutdown_failure()
    if lease is not None and lease.cancel.is_set() and lease.reason == "timeout":
        message = (
            f"The export took longer than {lease.timeout:g} s (SKUPORT_RUN_TIMEOUT) and was "
            "cancelled; narrow it with filters or fields."
        )
        return Failure("TimedOut", message)
    if isinstance(exc, SkuportError):
        message = exc.message
    elif isinstance(exc, StorageError):
        message = f"{exc}. Check the export storage (SKUPORT_EXPORT_STORAGE) and create the export again."
    elif isinstance(exc, OperationalError):
        message = (
            "The database did not answer (query timeout or lost connection); create the export "
            "again, or narrow it with filters if it keeps failing."
        )
    elif isinstance(exc, MemoryError):
        message = "The server ran out of memory; narrow the export with filters or fields and retry."
    else:
        message = (f"{exc}" or "unexpected error") + " (create the export again; report it if it persists)."
    return Failure(kind, message[:_MESSAGE_LIMIT])


# --- housekeeping ---------------------------------------------------------------------------------


def expire_files(*, now: dt.datetime | None = None) -> int:
    """Remove the files of completed exports past their expiry; returns how many."""
    from skuport.exports.service import expire_if_due
    from skuport.exports.storage import StorageError

    now = now or utcnow()
    with session_scope(write=False) as session:
        due = list(
            session.scalars(
                select(Export)
                .where(
                    Export.status == ExportStatus.COMPLETED,
                    Export.file_expired.is_(False),
                    Export.expires_at <= now,
                )
                .limit(1000)
            )
        )
    expired = 0
    for export in due:
        try:
            if expire_if_due(export, now=now):
                expired += 1
        except StorageError:
            log.warning("could not remove the file of export %s", export.id, exc_info=True)
    return expired
