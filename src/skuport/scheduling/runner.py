"""The ``export-run`` task: execute one claimed run of an export job and record its outcome.

A run row already holds everything needed (job id, scheduled time, attempt), so any executor can
pick it up. While this process holds a run — queued or executing — its heartbeat pump refreshes
``heartbeat_at`` (and progress) every few seconds; if the process dies, the reaper sees the
heartbeat stop. Every run has a hard timeout, and shutdown marks this process's runs failed.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update

from skuport.config import Settings, get_settings
from skuport.db import get_engine, session_scope, utcnow
from skuport.errors import SkuportError
from skuport.exporting.spec import ExportControl, ExportResult, ExportSpec
from skuport.jobs.models import ExportJob, ExportRun, RunStatus
from skuport.scheduling.executor import InProcessExecutor, get_executor, task
from skuport.scheduling.scheduler import SERVER_SHUT_DOWN, WORKER_ID, retry_at_for, rowcount

log = logging.getLogger(__name__)

TASK_NAME = "export-run"

ExportFn = Callable[..., ExportResult]


@dataclass
class _Held:
    """A run this process is responsible for."""

    run_id: str
    control: ExportControl | None = None
    deadline: float | None = None
    done: int | None = None
    total: int | None = None
    reason: str | None = None
    """Why the run was cancelled locally (timeout, shutdown, reaped elsewhere)."""
    finished: threading.Event = field(default_factory=threading.Event)


class RunTracker:
    """The runs held by this process and the one thread that heartbeats them all."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, _Held] = {}
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, run_id: str) -> _Held:
        """Start heartbeating ``run_id`` (queued or executing in this process)."""
        with self._lock:
            held = self._held.setdefault(run_id, _Held(run_id))
        self._ensure_pump()
        self._wake.set()  # beat now: the new run's heartbeat starts at once
        return held

    def release(self, run_id: str) -> None:
        """Stop heartbeating ``run_id``."""
        with self._lock:
            held = self._held.pop(run_id, None)
        if held is not None:
            held.finished.set()

    def held(self) -> list[str]:
        """Ids of the runs this process holds."""
        with self._lock:
            return list(self._held)

    def progress(self, run_id: str, done: int, total: int | None) -> None:
        """Remember progress; the next heartbeat writes it."""
        with self._lock:
            held = self._held.get(run_id)
            if held is not None:
                held.done, held.total = done, total

    def cancel(self, run_id: str, reason: str) -> None:
        """Ask the export of ``run_id`` to stop, remembering why."""
        with self._lock:
            held = self._held.get(run_id)
        if held is not None:
            held.reason = held.reason or reason
            if held.control is not None:
                held.control.cancel.set()

    def _ensure_pump(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._pump, name="skuport-heartbeat", daemon=True)
            self._thread.start()

    def _pump(self) -> None:
        while True:
            interval = max(0.2, get_settings().run_heartbeat_interval)
            self._wake.wait(interval)
            self._wake.clear()
            try:
                if not self.beat():
                    with self._lock:
                        if not self._held:
                            self._thread = None
                            return
            except Exception:
                log.exception("heartbeat failed")

    def beat(self, now: dt.datetime | None = None) -> int:
        """Write one heartbeat (and progress) for every held run; cancel runs reaped elsewhere."""
        with self._lock:
            held = [
                (h.run_id, h.done, h.total, h.deadline, h.control is not None) for h in self._held.values()
            ]
        if not held:
            return 0
        now = now or utcnow()
        mono = time.monotonic()
        with get_engine().begin() as conn:
            for run_id, done, total, deadline, executing in held:
                if deadline is not None and mono > deadline:
                    self.cancel(run_id, "timeout")
                values: dict[str, Any] = {"heartbeat_at": now}
                if done is not None:
                    values.update(progress_done=done, progress_total=total)
                changed = rowcount(
                    conn.execute(
                        update(ExportRun)
                        .where(ExportRun.id == run_id, ExportRun.status == RunStatus.RUNNING)
                        .values(**values)
                    )
                )
                if not changed and executing:
                    self.cancel(run_id, "gone")
        return len(held)

    def shutdown(self, *, grace: float, now: dt.datetime | None = None) -> list[str]:
        """Cancel held runs, give them ``grace`` seconds, then mark the rest failed ("server shut down")."""
        ids = self.held()
        for run_id in ids:
            self.cancel(run_id, "shutdown")
        deadline = time.monotonic() + grace
        with self._lock:
            waiting = [h for h in self._held.values() if h.control is not None]
        for held in waiting:
            held.finished.wait(max(0.0, deadline - time.monotonic()))
        remaining = self.held()
        marked = mark_failed(
            remaining,
            error=f"{SERVER_SHUT_DOWN} while the export was running; it will be retried",
            retry=True,
            now=now,
        )
        for run_id in remaining:
            self.release(run_id)
        return marked


TRACKER = RunTracker()


def mark_failed(
    run_ids: Iterable[str],
    *,
    error: str,
    retry: bool,
    now: dt.datetime | None = None,
    settings: Settings | None = None,
) -> list[str]:
    """Fail runs still running (and schedule their retry when asked); returns those changed."""
    now = now or utcnow()
    values = {"status": RunStatus.FAILED, "completed_at": now, "error": error}
    return [
        run_id for run_id in run_ids if _close(run_id, values=values, retry=retry, now=now, settings=settings)
    ]


def _close(
    run_id: str, *, values: dict[str, Any], retry: bool, now: dt.datetime, settings: Settings | None
) -> bool:
    """Record a running run's outcome, write first (see the scheduler); False if it was no longer running."""
    with session_scope() as session:
        done = rowcount(
            session.execute(
                update(ExportRun)
                .where(ExportRun.id == run_id, ExportRun.status == RunStatus.RUNNING)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
        )
        if not done or not retry:
            return bool(done)
        attempt, trigger, error = session.execute(
            select(ExportRun.attempt, ExportRun.trigger, ExportRun.error).where(ExportRun.id == run_id)
        ).one()
        retry_at = retry_at_for(settings or get_settings(), attempt=attempt, trigger=trigger, now=now)
        if retry_at is None and error:
            error = error.replace("; it will be retried", "; no attempts left")
        session.execute(
            update(ExportRun)
            .where(ExportRun.id == run_id)
            .values(retry_at=retry_at, error=error)
            .execution_options(synchronize_session=False)
        )
    return True


def submit_run(run_id: str) -> None:
    """Hand a committed running run to the executor (an in-process one: heartbeat it while queued)."""
    executor = get_executor()
    # A queued run is this process's to heartbeat only if this process will execute it; a run queued
    # for another machine is heartbeated by the worker that picks it up.
    local = isinstance(executor, InProcessExecutor)
    if local:
        TRACKER.hold(run_id)
    try:
        executor.submit(TASK_NAME, run_id)
    except Exception:
        if local:
            TRACKER.release(run_id)
        raise


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


@task(TASK_NAME)
def execute_run(run_id: str) -> None:
    """Run the export of one claimed run and record success or an actionable failure."""
    run_export_job(run_id)


def run_export_job(
    run_id: str, *, export: ExportFn | None = None, settings: Settings | None = None
) -> str | None:
    """Execute ``run_id``; returns the final status (None when the run was no longer running)."""
    settings = settings or get_settings()
    held = TRACKER.hold(run_id)
    control = ExportControl(progress=lambda done, total: TRACKER.progress(run_id, done, total))
    timeout = _timeout_of(run_id, settings)
    timer: threading.Timer | None = None
    plan: _Plan | None = None
    try:
        plan = _prepare(run_id, timeout=timeout)
        if plan is None:
            return None
        held.control = control
        held.deadline = time.monotonic() + timeout
        timer = threading.Timer(timeout, TRACKER.cancel, args=(run_id, "timeout"))
        timer.daemon = True
        timer.start()
        path, record_count, file_size = _export_and_deliver(plan, control, export)
        if held.reason is not None:
            raise _Cancelled()
        return _finish(
            run_id,
            status=RunStatus.SUCCESS,
            record_count=record_count,
            file_size=file_size,
            destination_path=path,
        )
    except BaseException as exc:
        message = _failure_message(exc, held.reason, timeout, plan.secrets if plan else ())
        if isinstance(exc, SkuportError | _Cancelled):
            log.warning("run %s failed: %s", run_id, message)
        else:
            log.error("run %s failed: %s", run_id, message, exc_info=exc)
        retry = held.reason == "shutdown"
        _finish(run_id, status=RunStatus.FAILED, error=message, retry=retry, settings=settings)
        if not isinstance(exc, Exception):
            raise
        return RunStatus.FAILED
    finally:
        if timer is not None:
            timer.cancel()
        TRACKER.release(run_id)


def _timeout_of(run_id: str, settings: Settings) -> int:
    """The hard timeout of the run's job (its own, else the server's)."""
    from skuport.jobs.service import run_timeout

    with session_scope(write=False) as session:
        job = session.scalars(select(ExportJob).join(ExportRun, ExportRun.job_id == ExportJob.id)
                              .where(ExportRun.id == run_id)).first()
    return run_timeout(job, settings) if job is not None else max(1, settings.run_timeout)


class _Cancelled(Exception):
    """The run was cancelled (timeout, shutdown, or it was failed elsewhere)."""


def _prepare(run_id: str, *, timeout: int) -> _Plan | None:
    from skuport.jobs.service import decrypted_destination_config, secret_values

    now = utcnow()
    with session_scope() as session:
        # Write first (see the scheduler): start the run only if it is still running.
        started = rowcount(
            session.execute(
                update(ExportRun)
                .where(ExportRun.id == run_id, ExportRun.status == RunStatus.RUNNING)
                .values(heartbeat_at=now, deadline_at=now + dt.timedelta(seconds=timeout), worker=WORKER_ID)
                .execution_options(synchronize_session=False)
            )
        )
        run = session.get(ExportRun, run_id) if started else None
        job = session.get(ExportJob, run.job_id) if run is not None else None
        if run is None or job is None:
            return None
        changed_since = None
        if job.delta:
            changed_since = session.scalar(
                select(ExportRun.scheduled_for)
                .where(
                    ExportRun.job_id == job.id,
                    ExportRun.status == RunStatus.SUCCESS,
                    ExportRun.id != run.id,
                )
                .order_by(ExportRun.scheduled_for.desc())
                .limit(1)
            )
        config = decrypted_destination_config(job)
        spec = ExportSpec(
            format=job.format,
            schema_id=job.schema_id,
            catalog_id=job.catalog_id,
            include_variants=job.include_variants,
            filters=job.filters or None,
            fields=tuple(job.fields) if job.fields else None,
            dimension_scope=job.dimension_scope or None,
            compress=job.compress,
            changed_since=changed_since,
        )
        return _Plan(
            run_id=run.id,
            delivery_id=run.retry_of or run.id,
            job_id=job.id,
            scheduled_for=run.scheduled_for,
            timezone=job.timezone,
            destination_type=job.destination_type,
            destination_config=config,
            filename_template=job.filename_template,
            spec=spec,
            secrets=secret_values(job.destination_type, config),
        )


def _export_and_deliver(plan: _Plan, control: ExportControl, export: ExportFn | None) -> tuple[str, int, int]:
    from skuport.exporting.destinations import get_destination
    from skuport.exporting.destinations.base import Delivery
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
    result = export(plan.spec, control=control)
    try:
        if control.cancel.is_set():
            raise _Cancelled()
        path = destination.deliver(
            Delivery(
                path=result.path,
                filename=filename,
                content_type=result.content_type,
                content_encoding=result.content_encoding,
                delivery_id=plan.delivery_id,
            )
        )
    finally:
        result.path.unlink(missing_ok=True)
    return path, result.record_count, result.file_size


def _failure_message(exc: BaseException, reason: str | None, timeout: int, secrets: Iterable[str]) -> str:
    if reason == "timeout":
        message = (
            f"timed out after {timeout} s (the export was cancelled; raise SKUPORT_RUN_TIMEOUT or "
            "narrow the job's selection)"
        )
    elif reason == "shutdown":
        message = f"{SERVER_SHUT_DOWN} while the export was running; it will be retried"
    elif reason == "gone":
        message = "the run was stopped elsewhere (reaped or deleted) while exporting"
    elif isinstance(exc, SkuportError):
        message = exc.message
    elif isinstance(exc, KeyboardInterrupt | SystemExit):
        message = f"{SERVER_SHUT_DOWN} while the export was running"
    else:
        message = (
            f"Export failed with an internal error ({type(exc).__name__}); the details are in the "
            "server log. Retry the run; if it fails again, report it."
        )
    from skuport.secrets import redact

    return redact(message, secrets)


def _finish(
    run_id: str,
    *,
    status: RunStatus,
    record_count: int | None = None,
    file_size: int | None = None,
    destination_path: str | None = None,
    error: str | None = None,
    retry: bool = False,
    settings: Settings | None = None,
) -> str | None:
    now = utcnow()
    values: dict[str, Any] = {
        "status": status,
        "completed_at": now,
        "record_count": record_count,
        "file_size": file_size,
        "destination_path": destination_path,
        "error": error,
        "heartbeat_at": now,
    }
    if status == RunStatus.SUCCESS:
        values.update(progress_done=record_count, progress_total=record_count)
    # Reaped or deleted meanwhile: the outcome recorded then stands.
    return status if _close(run_id, values=values, retry=retry, now=now, settings=settings) else None
