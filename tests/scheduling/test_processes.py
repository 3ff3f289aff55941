"""Two `skuport scheduler` processes on one database: a due tick is run once, and both stop cleanly."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import update

from skuport.db import session_scope
from skuport.jobs.models import ExportJob
from tests.jobs.conftest import make_job, runs

REPO = Path(__file__).resolve().parents[2]


def test_two_scheduler_processes_run_a_due_tick_once(database_url: str, tmp_path: Path) -> None:
    # a yearly schedule made due a few seconds ago (as after a short downtime): both processes see
    # it on their first tick, and no later tick can fall inside the test (a per-minute schedule
    # would fire again when the test crosses a minute boundary)
    job_id = make_job(now=dt.datetime.now(dt.UTC), schedule="0 0 1 1 *")
    with session_scope() as session:
        session.execute(
            update(ExportJob)
            .where(ExportJob.id == job_id)
            .values(next_run_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=3))
        )
    env = {
        **os.environ,
        "SKUPORT_DATABASE_URL": database_url,
        "SKUPORT_SCHEDULER_INTERVAL": "0.2",
        "SKUPORT_LOCAL_ROOT": str(tmp_path / "root"),
        "SKUPORT_LOG_LEVEL": "warning",
    }
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "skuport.cli", "scheduler"],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(r.status == "success" for r in runs(job_id)):
            time.sleep(0.2)
        time.sleep(1.5)  # both keep ticking: the tick must not be claimed again
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(timeout=30) for process in processes]
    done = runs(job_id)
    assert len(done) == 1, [(r.id, r.status, r.worker) for r in done]
    assert done[0].status == "success" and done[0].record_count == 0
    delivered = Path(str(done[0].destination_path).removeprefix("file://"))
    assert delivered.is_file() and delivered.is_relative_to(tmp_path / "root" / "feeds")
    assert codes == [0, 0], [p.stderr.read() if p.stderr else b"" for p in processes]


def test_sigterm_of_the_owner_mid_delivery_delivers_each_scheduled_time_once(
    database_url: str, tmp_path: Path
) -> None:
    from skuport.jobs.models import ExportRun
    from tests.exporting.destinations import servers

    receiver = servers.Receiver()
    receiver.script = [("sleep", 3, 200)]  # the first POST hangs 3 s, then is accepted
    secret = "whsec_" + "c2VjcmV0LWZvci10aGUtdHdvLXNjaGVkdWxlcnM="
    job_id = make_job(
        now=dt.datetime.now(dt.UTC),
        schedule="0 0 1 1 *",
        destinationType="webhook",
        destinationConfig={"url": receiver.url(), "secret": secret, "timeoutSeconds": 10},
    )
    with session_scope() as session:  # one tick due a few seconds ago
        session.execute(
            update(ExportJob)
            .where(ExportJob.id == job_id)
            .values(next_run_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=3))
        )
    env = {
        **os.environ,
        "SKUPORT_DATABASE_URL": database_url,
        "SKUPORT_SCHEDULER_INTERVAL": "0.2",
        "SKUPORT_WEBHOOK_ALLOW_PRIVATE": "true",
        "SKUPORT_SHUTDOWN_GRACE": "0.5",
        "SKUPORT_SHUTDOWN_STOP_WAIT": "15",
        "SKUPORT_RUN_RETRY_BACKOFF": "1",
        "SKUPORT_RUN_HEARTBEAT_INTERVAL": "0.3",
        "SKUPORT_RUN_STALE_AFTER": "5",
        "SKUPORT_LOG_LEVEL": "warning",
    }
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "skuport.cli", "scheduler"],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not receiver.requests:
            time.sleep(0.05)
        assert receiver.requests, "no delivery started"
        (run,) = runs(job_id)
        owner = next(p for p in processes if f":{p.pid}:" in str(run.worker))
        # when the process delivering is stopped while its POST is in flight
        stopped = time.monotonic()
        owner.send_signal(signal.SIGTERM)
        assert owner.wait(timeout=30) == 0, owner.stderr.read() if owner.stderr else b""
        took = time.monotonic() - stopped
        time.sleep(4)  # the other scheduler keeps ticking, reaping and retrying meanwhile
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        codes = [process.wait(timeout=30) for process in processes]
        receiver.stop()
    # then the POST that was in flight finished under its lease, and nobody delivered it again
    done = runs(job_id)
    assert [(r.status, r.attempt) for r in done] == [("success", 1)], [(r.status, r.error) for r in done]
    assert len(receiver.requests) == 1
    assert {r.headers["webhook-id"] for r in receiver.requests} == {done[0].id}
    assert took < 10, f"the stopping scheduler took {took:.1f} s to exit"
    assert codes == [0, 0]
    with session_scope() as session:
        assert session.get(ExportRun, done[0].id) is not None


def test_a_second_sigterm_ends_a_draining_scheduler_at_once(database_url: str, tmp_path: Path) -> None:
    from tests.exporting.destinations import servers

    receiver = servers.Receiver()
    receiver.script = [("sleep", 20, 200)]  # a delivery that would hold the drain for its whole grace
    job_id = make_job(
        now=dt.datetime.now(dt.UTC),
        schedule="0 0 1 1 *",
        destinationType="webhook",
        destinationConfig={"url": receiver.url(), "timeoutSeconds": 30},
    )
    with session_scope() as session:
        session.execute(
            update(ExportJob)
            .where(ExportJob.id == job_id)
            .values(next_run_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=3))
        )
    env = {
        **os.environ,
        "SKUPORT_DATABASE_URL": database_url,
        "SKUPORT_SCHEDULER_INTERVAL": "0.2",
        "SKUPORT_WEBHOOK_ALLOW_PRIVATE": "true",
        "SKUPORT_SHUTDOWN_GRACE": "30",
        "SKUPORT_LOG_LEVEL": "warning",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "skuport.cli", "scheduler"],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not receiver.requests:
            time.sleep(0.05)
        assert receiver.requests, "no delivery started"
        process.send_signal(signal.SIGTERM)
        time.sleep(1.5)
        assert process.poll() is None, "the first SIGTERM drains: the running delivery gets its grace"
        second = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 1
        assert time.monotonic() - second < 5
        assert b"again while shutting down" in (process.stderr.read() if process.stderr else b"")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        receiver.stop()
