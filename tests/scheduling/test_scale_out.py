"""Scale-out on the real PostgreSQL: `skuport scheduler` and `skuport worker` as real processes.

Work is deferred as procrastinate jobs in the transaction that writes its run; workers on other
processes claim it under the one lifecycle. A worker killed with -9 loses its run to the reaper, the
run is retried on the other worker at the same destination path, and its procrastinate job never
stays ``doing``.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text, update

from skuport.db import get_engine, session_scope
from skuport.jobs.models import ExportJob, ExportRun
from tests.conftest import TEST_DB
from tests.exporting.destinations import servers
from tests.jobs.conftest import make_job, runs, wait_until

pytestmark = [
    pytest.mark.skipif(
        TEST_DB != "postgres",
        reason="procrastinate's queue lives in PostgreSQL: the PostgreSQL pass of the suite runs these",
    ),
    pytest.mark.slow,
]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def fleet(database_url: str, tmp_path: Path) -> Iterator[Any]:
    """Start processes the way the deployment guide does; SIGTERM (then kill) them all at the end."""
    base = {
        "SKUPORT_DATABASE_URL": database_url,
        "SKUPORT_EXECUTOR": "procrastinate",
        "SKUPORT_SCHEDULER_INTERVAL": "0.2",
        "SKUPORT_LOCAL_ROOT": str(tmp_path / "root"),
        "SKUPORT_WEBHOOK_ALLOW_PRIVATE": "true",
        "SKUPORT_RUN_HEARTBEAT_INTERVAL": "0.5",
        "SKUPORT_RUN_STALE_AFTER": "4",
        "SKUPORT_RUN_RETRY_BACKOFF": "1",
        "SKUPORT_SHUTDOWN_GRACE": "2",
        "SKUPORT_LOG_LEVEL": "warning",
    }
    started: list[subprocess.Popen[bytes]] = []

    def start(*command: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", "skuport.cli", *command],
            env={**os.environ, **base},
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in started:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def due_now(job_id: str) -> None:
    with session_scope() as session:
        session.execute(
            update(ExportJob)
            .where(ExportJob.id == job_id)
            .values(next_run_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=2))
        )


def procrastinate_statuses() -> dict[str, int]:
    with get_engine().connect() as conn:
        rows = conn.execute(text("SELECT status, count(*) FROM procrastinate_jobs GROUP BY status")).all()
    return {str(status): int(count) for status, count in rows}


def test_two_schedulers_and_two_workers_run_and_deliver_each_tick_once(fleet: Any, tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    jobs = [
        make_job(
            now=now,
            schedule="0 0 1 1 *",
            destinationConfig={"path": f"feed-{i}"},
            filenameTemplate="feed-{jobId}.csv",
        )
        for i in range(20)
    ]
    for job_id in jobs:
        due_now(job_id)
    for command in (("worker",), ("worker", "--concurrency", "2"), ("scheduler",), ("scheduler",)):
        fleet(*command)

    def all_done() -> bool:
        return all(any(r.status == "success" for r in runs(job_id)) for job_id in jobs)

    wait_until(all_done, 90, "every job's run succeeded")
    time.sleep(1.5)  # the schedulers keep ticking: nothing is claimed twice
    for index, job_id in enumerate(jobs):
        done = runs(job_id)
        assert [(r.status, r.attempt) for r in done] == [("success", 1)], done
        files = list((tmp_path / "root" / f"feed-{index}").iterdir())
        assert [f.name for f in files] == [f"feed-{job_id}.csv"]
    workers = {str(r.worker).split(":")[1] for job_id in jobs for r in runs(job_id)}
    assert len(workers) == 2, "both worker processes ran exports"
    assert procrastinate_statuses() == {"succeeded": 20}


def test_a_worker_killed_mid_delivery_loses_its_run_to_the_other_worker(fleet: Any) -> None:
    receiver = servers.Receiver()
    receiver.script = [("sleep", 60, 200)]  # the first delivery hangs; the retry is answered at once
    secret = "whsec_" + "c2VjcmV0LWZvci10aGUtc2NhbGUtb3V0LXRlc3Q="
    try:
        job_id = make_job(
            now=dt.datetime.now(dt.UTC),
            schedule="0 0 1 1 *",
            destinationType="webhook",
            destinationConfig={"url": receiver.url(), "secret": secret, "timeoutSeconds": 120},
        )
        due_now(job_id)
        workers = [fleet("worker"), fleet("worker")]
        fleet("scheduler")
        wait_until(lambda: bool(receiver.requests), 60, "the first delivery started")
        (first,) = runs(job_id)
        owner = next(w for w in workers if f":{w.pid}:" in str(first.worker))
        owner.send_signal(signal.SIGKILL)
        owner.wait(10)
        wait_until(lambda: any(r.status == "success" for r in runs(job_id)), 60, "the retry succeeded")
        lost, retry = runs(job_id)
        assert lost.status == "failed" and lost.error is not None and lost.error.startswith("worker lost")
        assert (retry.trigger, retry.attempt, retry.retry_of) == ("retry", 2, lost.id)
        assert str(retry.worker) != str(lost.worker) and f":{owner.pid}:" not in str(retry.worker)
        assert retry.destination_path == lost.destination_path or lost.destination_path is None
        # the same webhook-id both times: the receiver can tell the repeat
        assert [r.headers["webhook-id"] for r in receiver.requests] == [lost.id, lost.id]
        wait_until(lambda: "doing" not in procrastinate_statuses(), 30, "no procrastinate job left doing")
        assert procrastinate_statuses().get("failed") == 1
    finally:
        receiver.stop()
    with session_scope() as session:
        assert session.get(ExportRun, lost.id) is not None


def test_sigterm_of_a_worker_lets_its_delivery_finish_within_the_grace(fleet: Any) -> None:
    receiver = servers.Receiver()
    receiver.script = [("sleep", 1.5, 200)]
    try:
        job_id = make_job(
            now=dt.datetime.now(dt.UTC),
            schedule="0 0 1 1 *",
            destinationType="webhook",
            destinationConfig={"url": receiver.url(), "timeoutSeconds": 30},
        )
        due_now(job_id)
        worker = fleet("worker")
        fleet("scheduler")
        wait_until(lambda: bool(receiver.requests), 60, "the delivery started")
        stopped = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0, worker.stderr.read() if worker.stderr else b""
        assert time.monotonic() - stopped < 10
        (run,) = runs(job_id)
        assert run.status == "success" and len(receiver.requests) == 1
        assert procrastinate_statuses() == {"succeeded": 1}
    finally:
        receiver.stop()


def _serve(fleet: Any, port: int) -> None:
    import httpx

    fleet("serve", "--no-scheduler", "--no-migrate", "--port", str(port))
    wait_until(lambda: _answers(httpx, f"http://127.0.0.1:{port}/readyz"), 60, f"the API on port {port}")


def _answers(httpx: Any, url: str) -> bool:
    try:
        return bool(httpx.get(url, timeout=1).status_code == 200)
    except httpx.HTTPError:
        return False


def test_a_one_off_export_created_on_one_api_replica_downloads_from_the_other(
    fleet: Any, admin: dict[str, str], moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3
    import httpx

    from skuport.demo import load_seed_records

    with session_scope() as session:
        load_seed_records(session)
    boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="a",
        aws_secret_access_key="b",
    ).create_bucket(Bucket="skuport-exports")
    storage = {
        "STORAGE": "s3",
        "S3_BUCKET": "skuport-exports",
        "S3_ENDPOINT_URL": moto_endpoint,
        "S3_REGION": "us-east-1",
        "S3_ACCESS_KEY_ID": "a",
        "S3_SECRET_ACCESS_KEY": "b",
    }
    for name, value in storage.items():
        monkeypatch.setenv(f"SKUPORT_EXPORT_{name}", value)
    first, second = servers.free_port(), servers.free_port()
    _serve(fleet, first)
    _serve(fleet, second)
    fleet("worker")
    created = httpx.post(
        f"http://127.0.0.1:{first}/api/v1/exports",
        headers=admin,
        json={"format": "csv", "schemaId": "schema-apparel"},
        timeout=10,
    )
    assert created.status_code == 202, created.text
    export_id = created.json()["id"]

    def on_second() -> dict[str, Any]:
        return dict(
            httpx.get(
                f"http://127.0.0.1:{second}/api/v1/exports/{export_id}", headers=admin, timeout=10
            ).json()
        )

    wait_until(lambda: on_second()["status"] == "completed", 60, "the export completed")
    body = on_second()
    download = httpx.get(body["downloadUrl"], timeout=10)  # signed: no token needed
    assert download.status_code == 200 and download.content.startswith(b"id,")
    assert len(download.content) == body["fileSize"] and body["downloadUrl"].startswith(
        f"http://127.0.0.1:{second}/"
    )
    assert procrastinate_statuses() == {"succeeded": 1}


def test_a_fleet_delivers_every_tick_of_100_minutely_jobs_once_for_three_minutes(
    fleet: Any, tmp_path: Path, admin: dict[str, str]
) -> None:
    import httpx

    # The first wave (100 runs due at once, while the processes start) gets at least 35 s before the next
    # minute's tick: a job whose first run is still going then has that tick skipped (no overlap), as it
    # should, which this test is not about. On a loaded CI machine the wave took longer than 8 s.
    while dt.datetime.now(dt.UTC).second > 25:
        time.sleep(0.5)
    start = dt.datetime.now(dt.UTC)
    jobs = [
        make_job(
            now=start,
            schedule="* * * * *",
            destinationConfig={"path": "minutely"},
            filenameTemplate="{jobId}-{datetime}.csv",
        )
        for _ in range(100)
    ]
    for job_id in jobs:
        due_now(job_id)  # the current minute's tick is due at once, then every minute
    port = servers.free_port()
    _serve(fleet, port)
    for command in (("worker",), ("worker",), ("scheduler",), ("scheduler",)):
        fleet(*command)
    end = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=3, seconds=2)
    while dt.datetime.now(dt.UTC) < end:
        time.sleep(1)
    wait_until(
        lambda: all(r.status != "running" for job_id in jobs for r in runs(job_id)), 60, "every run ended"
    )
    delivered = sorted(p.name for p in (tmp_path / "root" / "minutely").iterdir())
    ticks: list[tuple[str, dt.datetime]] = []
    for job_id in jobs:
        done = runs(job_id)
        assert all((r.status, r.attempt) == ("success", 1) for r in done), [(r.status, r.error) for r in done]
        ticks.extend((job_id, r.scheduled_for) for r in done)
    assert len(ticks) == len(set(ticks))  # one run per (job, scheduled time)
    assert all(sum(1 for job, _ in ticks if job == job_id) >= 3 for job_id in jobs)  # three minutes' ticks
    assert len(delivered) == len(ticks)  # one file per (job, scheduled time), none twice
    scraped = httpx.get(f"http://127.0.0.1:{port}/metrics", headers=admin, timeout=10).text
    assert f'skuport_runs{{status="success",trigger="schedule"}} {float(len(ticks))}' in scraped
