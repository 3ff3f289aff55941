"""The ``export-run`` task: run one queued run of an export job under its lease and record the outcome.

A run row holds everything needed (job, scheduled time, attempt), so any executor can pick it up.
The run is claimed through the one work lifecycle (:mod:`skuport.scheduling.lifecycle`): the lease
is heartbeated with progress, checked right before every step the destination's reader can see,
and a cancel (timeout, delete, shutdown) stops the pipeline at its next batch and the delivery at
its next chunk or attempt. Transient failures are retried with backoff, permanent ones are not.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy import null as sql_null
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from skuport.config import Settings, get_settings
from skuport.db import get_engine, session_scope, utcnow
from skuport.errors import SkuportError, WorkStopped
from skuport.exporting import workdir
from skuport.exporting.spec import ExportCancelled, ExportControl, ExportResult, ExportSpec
from skuport.jobs import notifications
from skuport.jobs.models import ExportJob, ExportRun, RunStatus, RunTrigger
from skuport.scheduling.executor import task
from skuport.scheduling.lifecycle import LIFECYCLE, SHUT_DOWN, Failure, Lease, WorkKind, rowcount

log = logging.getLogger(__name__)

TASK_NAME = "export-run"

ExportFn = Callable[..., ExportResult]


def retry_backoff(settings: Settings, attempt: int) -> dt.timedelta:
    """Delay before retrying a run whose attempt ``attempt`` failed: base, doubled each attempt."""
    return dt.timedelta(seconds=settings.run_retry_backoff * 2 ** max(0, attempt - 1))


def retry_at_for(settings: Settings, *, attempt: int, trigger: str, now: dt.datetime) -> dt.datetime | None:
    """When a run that failed through no fault of its own is retried, or None past the limit."""
    if trigger == RunTrigger.EXTERNAL or attempt >= settings.run_max_attempts:
        return None
    return now + retry_backoff(settings, attempt)


class RunWork(WorkKind):
    """Export runs as work: queued and running share the status ``running`` (a worker marks the claim)."""

    task: ClassVar[str] = TASK_NAME
    model: ClassVar[Any] = ExportRun
    queued: ClassVar[str] = RunStatus.RUNNING
    running: ClassVar[str] = RunStatus.RUNNING

    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings

    @property
    def settings(self) -> Settings:
        """The settings in force (fixed for tests, else the process's)."""
        return self._settings or get_settings()

    def timeout(self, session: Session, ident: str) -> float:
        """The job's own hard timeout, else the server's."""
        from skuport.jobs.service import run_timeout

        job = session.scalars(
            select(ExportJob).join(ExportRun, ExportRun.job_id == ExportJob.id).where(ExportRun.id == ident)
        ).first()
        return run_timeout(job, self.settings) if job is not None else max(1, self.settings.run_timeout)

    def log_fields(self, session: Session, ident: str) -> dict[str, Any]:
        """``jobId`` and ``runId``."""
        job_id = session.scalar(select(ExportRun.job_id).where(ExportRun.id == ident))
        return {"jobId": job_id, "runId": ident}

    def fail(
        self, session: Session, *, where: ColumnElement[bool], failure: Failure, now: dt.datetime
    ) -> list[str]:
        """Fail the matching running runs; a retryable failure gets ``retryAt`` while attempts remain."""
        rows = session.execute(
            select(ExportRun.id, ExportRun.attempt, ExportRun.trigger, ExportJob.active)
            .join(ExportJob, ExportJob.id == ExportRun.job_id)
            .where(where)
        ).all()
        changed: list[str] = []
        for run_id, attempt, trigger, active in rows:
            retry_at = (
                retry_at_for(self.settings, attempt=attempt, trigger=trigger, now=now)
                if failure.retry
                else None
            )
            error = failure.message + _retry_note(
                failure, retry_at, attempt=attempt, trigger=trigger, active=active, settings=self.settings
            )
            done = rowcount(
                session.execute(
                    update(ExportRun)
                    .where(and_(where, ExportRun.id == run_id))
                    .values(
                        status=RunStatus.FAILED,
                        completed_at=now,
                        heartbeat_at=now,
                        error=error,
                        retry_at=retry_at,
                    )
                    .execution_options(synchronize_session=False)
                )
            )
            if done:
                changed.append(run_id)
                if retry_at is None:  # the run's last word: tell who asked
                    notifications.enqueue(session, run_id, now=now)
        return changed

    def finished(self, session: Session, ident: str, now: dt.datetime) -> None:
        """A run succeeded: its notifications (run.succeeded, run.recovered) go in the same transaction."""
        notifications.enqueue(session, ident, now=now)


def _retry_note(
    failure: Failure,
    retry_at: dt.datetime | None,
    *,
    attempt: int,
    trigger: str,
    active: bool,
    settings: Settings,
) -> str:
    """What the run history says about the retry: when, which attempt, or why not."""
    limit = settings.run_max_attempts
    if retry_at is not None:
        note = f"; retrying at {retry_at:%H:%M:%S} UTC (attempt {attempt + 1} of {limit})"
        return note + ("; the job is paused: the retry runs once it is resumed" if not active else "")
    if not failure.retry:
        return ""
    if trigger == RunTrigger.EXTERNAL:
        return "; not retried (an external run)"
    return f"; not retried: attempt {attempt} of {limit} was the last"


RUNS = RunWork()
"""The kind of work an export run is."""


@dataclass(frozen=True)
class _Plan:
    """Everything the export needs, read from the database before the long work starts."""

    run_id: str
    delivery_id: str
    job_id: str
    scheduled_for: dt.datetime
    timezone: str
    destination_type: str
    destination_config: Mapping[str, Any]
    filename_template: str
    spec: ExportSpec
    secrets: tuple[str, ...]
    manifest: bool
    selection: Mapping[str, Any]
    """The job's selection as the API shows it (for the manifest)."""
    earlier_files: tuple[str, ...]
    """Files earlier attempts of this scheduled run delivered (removed unless delivered again)."""


@task(RUNS)
def execute_run(run_id: str) -> None:
    """Run the export of one queued run and record success or an actionable failure."""
    run_export_job(run_id)


def run_export_job(
    run_id: str, *, export: ExportFn | None = None, settings: Settings | None = None
) -> str | None:
    """Claim and execute ``run_id``; returns the final status (None when it was not ours to run)."""
    lease = LIFECYCLE.claim(RunWork(settings) if settings is not None else RUNS, run_id)
    if lease is None:
        return None
    plan: _Plan | None = None
    try:
        plan = _prepare(run_id)
        if plan is None:
            LIFECYCLE.release(lease)
            return None
        outcome = _export_and_deliver(plan, lease, export)
    except BaseException as exc:
        failure = classify(exc, lease, plan.secrets if plan else ())
        if isinstance(exc, SkuportError | WorkStopped | ExportCancelled):
            log.warning("run %s failed: %s", run_id, failure.message)
        else:
            log.error("run %s failed: %s", run_id, failure.message, exc_info=exc)
        LIFECYCLE.fail(lease, failure)
        if not isinstance(exc, Exception):
            raise
        return RunStatus.FAILED
    ended = LIFECYCLE.finish(
        lease,
        {
            "status": RunStatus.SUCCESS,
            "completed_at": utcnow(),
            "record_count": outcome.record_count,
            "file_size": outcome.file_size,
            "destination_path": outcome.path,
            "files": outcome.files if outcome.files is not None else sql_null(),
            "error": None,
            "progress_done": outcome.record_count,
            "progress_total": outcome.record_count,
        },
    )
    if not ended:
        log.warning("run %s: delivered to %s, but the run had been ended meanwhile", run_id, outcome.path)
        return None
    files = f" in {len(outcome.files)} file(s)" if outcome.files else ""
    log.info(
        "run %s: %d records, %d bytes%s delivered to %s",
        run_id,
        outcome.record_count,
        outcome.file_size,
        files,
        outcome.path,
    )
    return RunStatus.SUCCESS


def _prepare(run_id: str) -> _Plan | None:
    from skuport.exporting.selection import stored_selection
    from skuport.jobs.service import decrypted_destination_config, secret_values, spec_of_job

    with session_scope(write=False) as session:
        run = session.get(ExportRun, run_id)
        job = session.get(ExportJob, run.job_id) if run is not None else None
        if run is None or job is None:
            return None
        changed_since = None
        if job.delta:
            changed_since = session.scalar(
                select(ExportRun.scheduled_for)
                .where(
                    ExportRun.job_id == job.id, ExportRun.status == RunStatus.SUCCESS, ExportRun.id != run.id
                )
                .order_by(ExportRun.scheduled_for.desc())
                .limit(1)
            )
        config = decrypted_destination_config(job)
        earlier = session.scalars(
            select(ExportRun.files).where(
                or_(ExportRun.id == (run.retry_of or run.id), ExportRun.retry_of == (run.retry_of or run.id)),
                ExportRun.id != run.id,
                ExportRun.files.is_not(None),
            )
        ).all()
        return _Plan(
            run_id=run.id,
            delivery_id=run.retry_of or run.id,
            job_id=job.id,
            scheduled_for=run.scheduled_for,
            timezone=job.timezone,
            destination_type=job.destination_type,
            destination_config=config,
            filename_template=job.filename_template,
            spec=spec_of_job(job, changed_since=changed_since),
            secrets=secret_values(job.destination_type, config),
            manifest=job.manifest,
            selection=stored_selection(job).model_dump(
                mode="json", by_alias=True, exclude_none=True, warnings=False
            )
            if job.manifest
            else {},
            earlier_files=tuple(
                dict.fromkeys(f.get("filename") or f["name"] for files in earlier for f in files or ())
            ),
        )


def _export_and_deliver(plan: _Plan, lease: Lease, export: ExportFn | None) -> _Outcome:
    from skuport.exporting.destinations import get_destination
    from skuport.exporting.destinations.filenames import render_filename

    if export is None:
        from skuport.exporting.pipeline import run_export

        export = run_export
    # Render (and so validate) the name before the long export, and keep it stable across retries.
    filename = render_filename(
        plan.filename_template,
        scheduled_for=plan.scheduled_for,
        tz=plan.timezone,
        job_id=plan.job_id,
        run_id=plan.delivery_id,
    )
    destination = get_destination(plan.destination_type, plan.destination_config)
    result = export(plan.spec, control=ExportControl(progress=lease.progress, cancel=lease.cancel))
    try:
        if not result.split and not plan.manifest:
            path = _deliver(
                destination, lease, result.only.path, filename, result.media_type, plan.delivery_id
            )
            _remove_stale(plan, lease, destination, [filename])  # parts of an attempt that split
            return _Outcome(path, result.record_count, result.file_size, None)
        return _deliver_files(plan, lease, destination, filename, result)
    finally:
        result.discard()


@dataclass(frozen=True)
class _Outcome:
    path: str
    record_count: int
    file_size: int
    files: list[dict[str, Any]] | None
    """What the run records in ``files``: each delivered file's manifest entry and full ``filename``."""


def _deliver(
    destination: Any,
    lease: Lease,
    source: Path,
    filename: str,
    media_type: str,
    delivery_id: str,
    message_id: str | None = None,
) -> str:
    from skuport.exporting.destinations.base import Delivery

    delivery = Delivery(
        path=source,
        filename=filename,
        content_type=media_type,
        delivery_id=delivery_id,
        fence=lease,
        message_id=message_id,
    )
    path: str = destination.deliver(delivery)
    return path


def _deliver_files(
    plan: _Plan, lease: Lease, destination: Any, filename: str, result: ExportResult
) -> _Outcome:
    """Deliver every part (each under the lease, recorded on the run before it goes out), remove what an
    earlier attempt delivered that this one does not deliver again, then the manifest, last."""
    from skuport.exporting import manifest

    names = manifest.file_names(filename, result)
    manifest_file = manifest.manifest_name(filename, extension=result.extension) if plan.manifest else None
    delivered: list[manifest.Delivered] = []
    try:
        if manifest_file in plan.earlier_files:  # an earlier attempt's manifest would list other parts
            destination.remove([manifest_file], lease)
        for index, (name, file) in enumerate(zip(names, result.files, strict=True), start=1):
            _record_files(lease, delivered, pending=name)
            # one delivery id per part (a retry's temporary names replace a killed attempt's); the webhook
            # message id follows the content, so a receiver's de-duplication keeps no part the manifest
            # does not list
            path = _deliver(
                destination,
                lease,
                file.path,
                name,
                result.media_type,
                f"{plan.delivery_id}-{index:03d}",
                message_id=f"{plan.delivery_id}-{index:03d}-{file.sha256[:16]}",
            )
            delivered.append(manifest.Delivered(name=name, path=path, file=file))
        _record_files(lease, delivered, pending=manifest_file)
        _remove_stale(plan, lease, destination, [*names, *([manifest_file] if manifest_file else [])])
        path = delivered[0].path
        if manifest_file is not None:
            path = _deliver_manifest(plan, lease, destination, manifest_file, result, delivered)
    except BaseException:
        _withdraw(destination, lease, [d.name for d in delivered], plan.run_id)
        raise
    return _Outcome(path, result.record_count, result.file_size, _entries(delivered, manifest=manifest_file))


def _remove_stale(plan: _Plan, lease: Lease, destination: Any, current: Sequence[str]) -> None:
    """Remove the files earlier attempts of this scheduled run delivered that this one did not."""
    stale = [name for name in plan.earlier_files if name not in set(current)]
    if stale and destination.can_remove:
        destination.remove(stale, lease)
        log.info("run %s: removed %d file(s) an earlier attempt delivered", plan.run_id, len(stale))


def _deliver_manifest(
    plan: _Plan,
    lease: Lease,
    destination: Any,
    name: str,
    result: ExportResult,
    delivered: Sequence[Any],
) -> str:
    from skuport.exporting import manifest

    document = manifest.manifest(
        delivered,
        result,
        selection=plan.selection,
        run={"jobId": plan.job_id, "runId": plan.run_id, "scheduledFor": plan.scheduled_for},
    )
    with tempfile.NamedTemporaryFile(
        prefix="skuport-manifest-", suffix=".json", dir=workdir.work_dir()
    ) as out:
        out.write(document)
        out.flush()
        return _deliver(
            destination,
            lease,
            Path(out.name),
            name,
            manifest.MANIFEST_MEDIA_TYPE,
            f"{plan.delivery_id}-manifest",
            message_id=f"{plan.run_id}-manifest",
        )


def _entries(
    delivered: Sequence[Any], *, pending: str | None = None, manifest: str | None = None
) -> list[dict[str, Any]]:
    """The run's ``files``: each delivered part (its manifest entry and its full name), then a file about
    to go out (``pending``) or the delivered manifest, by name alone (the run history lists the parts)."""
    entries = [{**d.entry(), "filename": d.name} for d in delivered]
    if pending:
        entries.append({"filename": pending, "pending": True})
    if manifest:
        entries.append({"filename": manifest, "manifest": True})
    return entries


def _record_files(lease: Lease, delivered: Sequence[Any], *, pending: str | None = None) -> None:
    """Keep on the run which files are (or may be) out there, only while the lease holds: a retry removes
    those it does not deliver again."""
    with session_scope() as session:
        done = rowcount(
            session.execute(
                update(ExportRun)
                .where(lease.where)
                .values(files=_entries(delivered, pending=pending))
                .execution_options(synchronize_session=False)
            )
        )
    if not done:
        lease.stop("gone")
        lease.check()


class _Owned:
    """The fence of taking parts back: the run's row is still this lease's (a timeout or a local cancel
    still lets a run clean up after itself; a run ended elsewhere does not touch the destination)."""

    def __init__(self, lease: Lease) -> None:
        self.lease = lease
        self.cancel = threading.Event()

    def check(self) -> None:
        with get_engine().connect() as conn:
            if conn.execute(select(ExportRun.id).where(self.lease.where)).first() is None:
                raise WorkStopped("gone")


def _withdraw(destination: Any, lease: Lease, names: list[str], run_id: str) -> None:
    """A run that fails half-way takes back the parts it delivered while its row is still its own (a
    retry delivers them again). A webhook receiver's parts cannot be taken back: they stay recorded."""
    if not names or not destination.can_remove or lease.reason == "gone":
        return
    fence = _Owned(lease)
    try:
        destination.remove(names, fence)
        with session_scope() as session:
            session.execute(
                update(ExportRun)
                .where(lease.where)
                .values(files=[])
                .execution_options(synchronize_session=False)
            )
        log.info("run %s: took back the %d part(s) it had delivered", run_id, len(names))
    except Exception as exc:
        log.warning("run %s: could not take back its delivered parts: %s", run_id, exc)


_STOPPED = {
    "timeout": "timed out after {timeout:g} s (the export was cancelled and nothing was delivered; raise the "
    "job's timeoutSeconds or SKUPORT_RUN_TIMEOUT, or narrow the job's selection)",
    "shutdown": f"{SHUT_DOWN} while the export was running (nothing was delivered)",
    "gone": "the run was ended elsewhere (reaped, or its job deleted) while exporting; nothing was delivered",
}


def classify(exc: BaseException, lease: Lease, secrets: Iterable[str]) -> Failure:
    """The failure to record: an actionable message, and whether another attempt may succeed."""
    from skuport.secrets import redact

    reason = lease.reason if lease.cancel.is_set() else None
    if isinstance(exc, WorkStopped | ExportCancelled) or reason is not None:
        reason = reason or str(getattr(exc, "reason", None) or "cancelled")
        template = _STOPPED.get(reason, "the run was cancelled ({reason}); nothing was delivered")
        return Failure(
            "Stopped", template.format(timeout=lease.timeout, reason=reason), retry=reason == "shutdown"
        )
    if isinstance(exc, SkuportError):
        return Failure(
            type(exc).__name__, redact(exc.message, secrets), retry=bool(getattr(exc, "transient", False))
        )
    if isinstance(exc, OperationalError):
        return Failure(
            "DatabaseError", "the database did not answer (lost connection or timeout)", retry=True
        )
    if isinstance(exc, KeyboardInterrupt | SystemExit):
        return Failure("ShutDown", f"{SHUT_DOWN} while the export was running", retry=True)
    return Failure(
        type(exc).__name__,
        f"Export failed with an internal error ({type(exc).__name__}); the "
        "details are in the server log. Retry the run; if it fails again, report it.",
    )
