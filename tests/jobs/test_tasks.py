"""The export-run task: heartbeats, progress, hard timeout, shutdown, killed workers, error messages.

These tests drive the real task against the real database; where a slow export is needed, the
export function is a small stand-in that waits on the run's cancel event like the pipeline does
(the real pipeline is exercised end to end in test_e2e.py).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import and_

from skuport.config import Settings
from skuport.db import session_scope
from skuport.exporting.spec import ExportControl, ExportFile, ExportResult, ExportSpec
from skuport.jobs.models import ExportRun, RunTrigger
from skuport.jobs.scheduler import Scheduler, claim_run
from skuport.jobs.tasks import RUNS, run_export_job
from skuport.scheduling.lifecycle import LIFECYCLE, Failure
from tests.jobs.conftest import Worker, get_run, make_job, runs, wait_until

UTC = dt.UTC


def start_run(job_id: str, *, now: dt.datetime | None = None) -> str:
    """Claim a manual run as the API's "run now" does; return its id."""
    now = now or dt.datetime.now(UTC)
    with session_scope() as session:
        claim = claim_run(
            session,
            job_id=job_id,
            timezone="UTC",
            scheduled_for=now,
            trigger=RunTrigger.MANUAL,
            now=now,
            record_skip=False,
        )
        assert claim.run is not None
        return claim.run.id


class SlowExport:
    """An export that reports progress and then waits until released or cancelled."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.release = threading.Event()
        self.started = threading.Event()

    def __call__(self, spec: ExportSpec, *, control: ExportControl) -> ExportResult:
        assert control.progress is not None
        control.progress(3, 10)
        self.started.set()
        while not self.release.is_set():
            if control.cancel.wait(0.05):
                raise RuntimeError("Export cancelled after 3 of 10 records.")
        path = self.tmp / "export.csv"
        path.write_bytes(b"id\n1\n2\n3\n")
        return ExportResult(
            files=(ExportFile(path=path, row_count=3, file_size=8, sha256="x"),),
            record_count=3,
            content_type="text/csv",
            extension="csv",
        )


def fast_settings(settings: Settings, **changes: Any) -> Settings:
    return settings.model_copy(update={"run_heartbeat_interval": 0.1, **changes})


@pytest.fixture
def quick_heartbeat(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process-wide heartbeat pump beats every 0.1 s in these tests."""
    from skuport.config import get_settings

    monkeypatch.setenv("SKUPORT_RUN_HEARTBEAT_INTERVAL", "0.1")
    get_settings.cache_clear()


def test_success_is_recorded_with_counts_and_path(
    settings: Settings, local_root: Path, tmp_path: Path
) -> None:
    job_id = make_job(now=dt.datetime.now(UTC), filenameTemplate="feed-{date}-{runId}.csv")
    run_id = start_run(job_id)
    export = SlowExport(tmp_path)
    export.release.set()
    assert run_export_job(run_id, export=export, settings=settings) == "success"
    run = get_run(run_id)
    assert (run.status, run.record_count, run.file_size, run.error) == ("success", 3, 8, None)
    target = local_root / "feeds" / f"feed-{run.scheduled_for:%Y-%m-%d}-{run_id}.csv"
    assert run.destination_path == target.as_uri()
    assert target.read_bytes() == b"id\n1\n2\n3\n"
    assert run.completed_at is not None and run.completed_at >= run.started_at
    assert not (tmp_path / "export.csv").exists()  # the temporary file is removed


def test_heartbeat_and_progress_while_running(
    settings: Settings,
    local_root: Path,
    tmp_path: Path,
    quick_heartbeat: None,
    client: Any,
    admin: dict[str, str],
) -> None:
    job_id = make_job(now=dt.datetime.now(UTC))
    run_id = start_run(job_id)
    export = SlowExport(tmp_path)
    worker = threading.Thread(target=run_export_job, args=(run_id,), kwargs={"export": export})
    worker.start()
    try:
        assert export.started.wait(10)
        first = get_run(run_id).heartbeat_at
        wait_until(lambda: get_run(run_id).heartbeat_at != first)

        def latest() -> dict[str, Any]:
            return client.get(f"/api/v1/export-jobs/{job_id}/runs", headers=admin).json()[0]

        # A heartbeat already in flight when progress was reported may carry the old figures; the
        # next one carries the new.
        wait_until(lambda: latest()["progress"] == {"done": 3, "total": 10}, timeout=5)
        body = latest()
        assert body["status"] == "running"
        assert body["progress"] == {"done": 3, "total": 10}
        assert body["completedAt"] is None
        assert get_run(run_id).deadline_at is not None
    finally:
        export.release.set()
        worker.join(20)
    body = client.get(f"/api/v1/export-jobs/{job_id}/runs", headers=admin).json()[0]
    assert body["status"] == "success" and body["progress"] == {"done": 3, "total": 3}  # final counts kept


def test_a_job_timeout_overrides_the_server_default(
    settings: Settings, local_root: Path, tmp_path: Path
) -> None:
    job_id = make_job(now=dt.datetime.now(UTC), timeoutSeconds=1)
    run_id = start_run(job_id)
    started = time.monotonic()
    status = run_export_job(
        run_id, export=SlowExport(tmp_path), settings=fast_settings(settings, run_timeout=3600)
    )
    assert status == "failed" and 0.9 < time.monotonic() - started < 10
    run = get_run(run_id)
    assert run.error is not None and run.error.startswith("timed out after 1 s")
    assert run.deadline_at is not None and run.started_at is not None


def test_hard_timeout_cancels_the_export(settings: Settings, local_root: Path, tmp_path: Path) -> None:
    job_id = make_job(now=dt.datetime.now(UTC))
    run_id = start_run(job_id)
    started = time.monotonic()
    status = run_export_job(
        run_id, export=SlowExport(tmp_path), settings=fast_settings(settings, run_timeout=1)
    )
    elapsed = time.monotonic() - started
    assert status == "failed"
    assert 0.9 < elapsed < 10
    run = get_run(run_id)
    assert run.error is not None and run.error.startswith("timed out after 1 s")
    assert run.retry_at is None


def test_failure_message_is_actionable_and_has_no_secret(
    settings: Settings, local_root: Path, tmp_path: Path
) -> None:
    secret = "whsec_c2VjcmV0LXZhbHVlLXRoYXQtbXVzdC1ub3QtbGVhaw=="
    job_id = make_job(
        now=dt.datetime.now(UTC),
        destinationType="webhook",
        destinationConfig={"url": "https://127.0.0.1:9/hook", "secret": secret, "maxAttempts": 1},
    )
    run_id = start_run(job_id)
    export = SlowExport(tmp_path)
    export.release.set()
    assert run_export_job(run_id, export=export, settings=settings) == "failed"
    run = get_run(run_id)
    assert run.error and "Traceback" not in run.error and secret not in run.error
    assert "webhook" in run.error.lower() or "127.0.0.1" in run.error


def test_an_unexpected_error_is_recorded_without_internals(settings: Settings, local_root: Path) -> None:
    job_id = make_job(now=dt.datetime.now(UTC))
    run_id = start_run(job_id)

    def broken(spec: ExportSpec, *, control: ExportControl) -> ExportResult:
        raise KeyError("internal detail /etc/secret-path")

    assert run_export_job(run_id, export=broken, settings=settings) == "failed"
    error = get_run(run_id).error
    assert error is not None and "KeyError" in error and "/etc/secret-path" not in error


def test_shutdown_cancels_running_work_after_the_grace_and_schedules_its_retry(
    settings: Settings, local_root: Path, tmp_path: Path
) -> None:
    executing_job, queued_job = make_job(now=dt.datetime.now(UTC)), make_job(now=dt.datetime.now(UTC))
    executing, queued = start_run(executing_job), start_run(queued_job)
    export = SlowExport(tmp_path)
    worker = threading.Thread(target=run_export_job, args=(executing,), kwargs={"export": export})
    worker.start()
    assert export.started.wait(10)
    LIFECYCLE.hold_queued(RUNS, queued)  # in the pool's queue, not started yet
    try:
        started = time.monotonic()
        assert LIFECYCLE.drain(grace=0.5, stop_wait=5) == [executing]
        assert 0.4 < time.monotonic() - started < 5
        assert run_export_job(queued, export=export) is None  # a draining process claims nothing
    finally:
        LIFECYCLE.reset()
    worker.join(10)
    run = get_run(executing)
    assert run.status == "failed" and run.error is not None and run.error.startswith("server shut down")
    assert "retrying at" in run.error and run.retry_at is not None
    # the queued run stays queued for the next start (or another scheduler's reaper)
    assert (get_run(queued).status, get_run(queued).worker) == ("running", None)
    assert LIFECYCLE.leases() == []


def test_a_failure_never_overwrites_an_ended_run(settings: Settings) -> None:
    job_id = make_job(now=dt.datetime.now(UTC))
    run_id = start_run(job_id)
    with session_scope() as session:
        run = session.get(ExportRun, run_id)
        assert run is not None
        run.status = "success"
    with session_scope() as session:
        running = and_(ExportRun.id == run_id, ExportRun.status == "running")
        assert (
            RUNS.fail(
                session,
                where=running,
                failure=Failure("ShutDown", "shut down", retry=True),
                now=dt.datetime.now(UTC),
            )
            == []
        )
    assert get_run(run_id).status == "success"


def test_a_run_gone_elsewhere_is_not_executed(settings: Settings, tmp_path: Path) -> None:
    job_id = make_job(now=dt.datetime.now(UTC))
    run_id = start_run(job_id)
    with session_scope() as session:
        RUNS.fail(
            session,
            where=ExportRun.id == run_id,
            failure=Failure("WorkerLost", "worker lost"),
            now=dt.datetime.now(UTC),
        )
    export = SlowExport(tmp_path)
    assert run_export_job(run_id, export=export, settings=settings) is None
    assert not export.started.is_set()


CHILD = textwrap.dedent("""
    import sys, time
    from skuport.jobs.tasks import run_export_job

    def forever(spec, *, control):
        control.progress(1, 2)
        while True:
            time.sleep(1)

    run_export_job(sys.argv[1], export=forever)
""")


def test_a_killed_worker_process_is_reaped_and_retried(settings: Settings, local_root: Path) -> None:
    # given a run executing in another process, heartbeating
    job_id = make_job(now=dt.datetime.now(UTC) - dt.timedelta(minutes=5), schedule="0 0 1 1 *")
    run_id = start_run(job_id)
    env = {**os.environ, "SKUPORT_RUN_HEARTBEAT_INTERVAL": "0.2"}
    child = subprocess.Popen([sys.executable, "-c", CHILD, run_id], env=env, cwd=Path(__file__).parents[2])
    try:
        wait_until(lambda: get_run(run_id).progress_done == 1, timeout=60)
        beat = get_run(run_id).heartbeat_at
        wait_until(lambda: get_run(run_id).heartbeat_at != beat)
    finally:
        # when the process is killed (no chance to clean up)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    last = get_run(run_id).heartbeat_at
    assert last is not None and get_run(run_id).status == "running"
    worker = Worker(instant=False)
    scheduler = Scheduler(executor=worker, settings=settings)
    # then within the stale window nothing happens, after it the run is failed and retried
    assert scheduler.tick(last + dt.timedelta(seconds=60)).reaped == []
    assert scheduler.tick(last + dt.timedelta(seconds=91)).reaped == [run_id]
    run = get_run(run_id)
    assert run.status == "failed" and run.error is not None and run.error.startswith("worker lost")
    assert run.retry_at == last + dt.timedelta(seconds=121)
    retried = scheduler.tick(last + dt.timedelta(seconds=122)).retried
    assert len(retried) == 1 and worker.submitted == retried
    retry = runs(job_id)[-1]
    assert (retry.trigger, retry.attempt, retry.retry_of, retry.scheduled_for) == (
        "retry",
        2,
        run_id,
        run.scheduled_for,
    )
