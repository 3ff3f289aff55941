"""Runs own their delivery: against real receivers, a run that ended never delivers afterwards.

Each test drives a real run (API, scheduler, in-process executor, the real pipeline) against a real
server — the scripted HTTP receiver, moto S3 — and breaks it as a user's night would: a receiver that
hangs, a job deleted mid-retry, a shutdown, a kill -9, a refused connection.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from skuport.config import get_settings
from skuport.db import session_scope
from skuport.exporting import workdir
from skuport.jobs.models import ExportRun
from skuport.jobs.scheduler import Scheduler
from skuport.jobs.tasks import RUNS, run_export_job
from skuport.scheduling.lifecycle import LIFECYCLE
from tests.exporting.destinations import servers
from tests.jobs.conftest import Worker, get_run, runs, wait_until

UTC = dt.UTC
REPO = Path(__file__).resolve().parents[2]
WALL = time.time() - time.monotonic()
"""Adds to the receiver's monotonic arrival times to compare them with the run's wall-clock times."""


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """Local root and temporary files in this test's folder, loopback allowed, quick heartbeats."""
    monkeypatch.setenv("SKUPORT_LOCAL_ROOT", str(tmp_path / "root"))
    monkeypatch.setenv("SKUPORT_TMP_DIR", str(tmp_path / "tmp"))
    monkeypatch.setenv("SKUPORT_WEBHOOK_ALLOW_PRIVATE", "true")
    monkeypatch.setenv("SKUPORT_RUN_HEARTBEAT_INTERVAL", "0.2")
    get_settings.cache_clear()
    yield tmp_path
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
def receiver() -> Iterator[servers.Receiver]:
    """A scripted webhook receiver on loopback."""
    receiver = servers.Receiver()
    yield receiver
    receiver.stop()


@pytest.fixture
def records(admin: dict[str, str]) -> None:
    """The seed records."""
    from skuport.demo import load_seed_records

    with session_scope() as session:
        load_seed_records(session)


def make(
    client: TestClient, admin: dict[str, str], destination_type: str, config: dict[str, Any], **extra: Any
) -> str:
    body = {
        "name": f"owned {destination_type}",
        "destinationType": destination_type,
        "destinationConfig": config,
        "format": "csv",
        "schemaId": "schema-apparel",
        "schedule": "0 0 1 1 *",
        "filenameTemplate": "feed-{date}.csv",
        **extra,
    }
    response = client.post("/api/v1/export-jobs", json=body, headers=admin)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def run_now(client: TestClient, admin: dict[str, str], job_id: str) -> str:
    response = client.post(f"/api/v1/export-jobs/{job_id}/run", headers=admin)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def queued_run(job_id: str) -> str:
    """A run claimed for the job and not handed to any executor (the test runs it)."""
    from skuport.jobs.models import RunTrigger
    from skuport.jobs.scheduler import claim_run

    now = dt.datetime.now(UTC)
    with session_scope() as session:
        claim = claim_run(
            session,
            job_id=job_id,
            timezone="UTC",
            scheduled_for=now,
            trigger=RunTrigger.SCHEDULE,
            now=now,
            record_skip=False,
        )
        assert claim.run is not None
        return claim.run.id


def ended(run_id: str) -> ExportRun:
    wait_until(lambda: get_run(run_id).status != "running", what=f"run {run_id} ended")
    return get_run(run_id)


def arrivals(receiver: servers.Receiver) -> list[float]:
    """Wall-clock arrival times of the receiver's requests."""
    return [request.at + WALL for request in receiver.requests]


def test_a_timed_out_run_posts_nothing_afterwards(
    client: TestClient, admin: dict[str, str], records: None, env: Path, receiver: servers.Receiver
) -> None:
    # given a receiver that hangs past the webhook's timeout, then answers 200, every time
    receiver.script = [("sleep", 1.5, 200)] * 10
    job_id = make(
        client,
        admin,
        "webhook",
        {"url": receiver.url(), "timeoutSeconds": 1, "maxAttempts": 10},
        timeoutSeconds=2,
    )
    # when the run's hard timeout passes while the webhook is retrying
    run = ended(run_now(client, admin, job_id))
    assert run.status == "failed" and run.error is not None and run.error.startswith("timed out after 2 s")
    assert "nothing was delivered" in run.error and run.retry_at is None
    time.sleep(2.5)  # then the receiver, still answering late, gets no further request
    assert run.completed_at is not None
    assert receiver.requests and max(arrivals(receiver)) <= run.completed_at.timestamp() + 0.05


def test_a_job_deleted_while_its_webhook_retries_gets_nothing_more(
    client: TestClient, admin: dict[str, str], records: None, env: Path, receiver: servers.Receiver
) -> None:
    receiver.script = [("respond", 503, {}, b"busy")] * 10
    job_id = make(client, admin, "webhook", {"url": receiver.url(), "maxAttempts": 10})
    run_id = run_now(client, admin, job_id)
    wait_until(lambda: len(receiver.requests) >= 2, what="two attempts")
    assert client.delete(f"/api/v1/export-jobs/{job_id}", headers=admin).status_code == 200
    deleted = time.time()
    time.sleep(3)  # the backoff between attempts is 0.5-4 s: a third attempt would have come by now
    assert max(arrivals(receiver)) <= deleted + 0.05, "a POST arrived after the job was deleted"
    assert LIFECYCLE.leases() == [] and runs(job_id) == []
    assert not any(r.id == run_id for r in runs(job_id))


class SlowExport:
    """A real-looking export that takes ``seconds`` and honours cancellation."""

    def __init__(self, folder: Path, seconds: float) -> None:
        self.folder, self.seconds = folder, seconds
        self.started = threading.Event()

    def __call__(self, spec: Any, *, control: Any) -> Any:
        from skuport.exporting.spec import ExportCancelled, ExportFile, ExportResult

        control.progress(95, 100)
        self.started.set()
        if control.cancel.wait(self.seconds):
            raise ExportCancelled("cancelled at 95 of 100")
        control.progress(100, 100)
        path = self.folder / "slow.csv"
        path.write_bytes(b"id\nx\n")
        return ExportResult(
            files=(ExportFile(path=path, row_count=100, file_size=5, sha256="x"),),
            record_count=100,
            content_type="text/csv",
            extension="csv",
        )


def test_a_run_95_percent_done_finishes_within_the_shutdown_grace(
    client: TestClient, admin: dict[str, str], env: Path
) -> None:
    job_id = make(client, admin, "local", {"path": "grace"})
    run_id = queued_run(job_id)
    export = SlowExport(env, seconds=1.5)
    worker = threading.Thread(target=run_export_job, args=(run_id,), kwargs={"export": export})
    worker.start()
    assert export.started.wait(10)
    started = time.monotonic()
    try:
        assert LIFECYCLE.drain(grace=30, stop_wait=5) == []  # nothing had to be cancelled
    finally:
        LIFECYCLE.reset()
    worker.join(10)
    assert time.monotonic() - started < 10
    run = get_run(run_id)
    assert run.status == "success" and run.record_count == 100 and run.error is None
    assert (env / "root" / "grace").is_dir()


def test_a_transient_s3_failure_is_retried_and_delivered_at_the_same_path(
    client: TestClient, admin: dict[str, str], records: None, env: Path
) -> None:
    from moto.server import ThreadedMotoServer

    port = servers.free_port()  # nothing listens yet: connection refused
    config = {
        "bucket": "nightly",
        "path": "feeds",
        "region": "us-east-1",
        "endpointUrl": f"http://127.0.0.1:{port}",
        "accessKeyId": "test",
        "secretAccessKey": "test",
        "timeoutSeconds": 2,
    }
    job_id = make(client, admin, "s3", config)
    first = ended(run_now(client, admin, job_id))
    assert first.status == "failed" and first.error is not None and first.retry_at is not None
    assert "could not connect" in first.error
    assert "retrying at" in first.error and "attempt 2 of" in first.error
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        s3 = boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        s3.create_bucket(Bucket="nightly")
        worker = Worker(instant=False)
        scheduler = Scheduler(executor=worker, settings=get_settings())
        report = scheduler.tick(first.retry_at + dt.timedelta(seconds=1))
        (retry_id,) = report.retried
        assert run_export_job(retry_id) == "success"
        retry = get_run(retry_id)
        assert (retry.trigger, retry.attempt, retry.retry_of) == ("retry", 2, first.id)
        key = f"feeds/feed-{first.scheduled_for:%Y-%m-%d}.csv"
        assert retry.destination_path == f"s3://nightly/{key}"
        body = s3.get_object(Bucket="nightly", Key=key)["Body"].read()
        assert body.startswith(b"id,") and len(body) == retry.file_size
        assert s3.list_multipart_uploads(Bucket="nightly").get("Uploads", []) == []
    finally:
        server.stop()


def test_a_permanent_failure_is_not_retried(
    client: TestClient, admin: dict[str, str], records: None, env: Path, receiver: servers.Receiver
) -> None:
    receiver.script = [("respond", 401, {}, b"bad signature")]
    job_id = make(client, admin, "webhook", {"url": receiver.url()})
    run = ended(run_now(client, admin, job_id))
    assert run.status == "failed" and run.retry_at is None and len(receiver.requests) == 1
    assert run.error is not None and "refused: 401" in run.error and "retrying" not in run.error


CHILD = textwrap.dedent("""
    import sys, threading
    from skuport.exporting.destinations import base
    from skuport.jobs.tasks import run_export_job

    # Hold the local delivery after its temporary file is created and before its first byte.
    base.Delivery.between_chunks = lambda self: threading.Event().wait()
    run_export_job(sys.argv[1])
""")


def test_after_kill_9_and_restart_no_temporary_or_part_file_remains(
    client: TestClient, admin: dict[str, str], records: None, env: Path
) -> None:
    job_id = make(client, admin, "local", {"path": "killed"})
    run_id = queued_run(job_id)
    folder = env / "root" / "killed"
    child = subprocess.Popen([sys.executable, "-c", CHILD, run_id], env=dict(os.environ), cwd=REPO)
    try:
        wait_until(lambda: any(folder.glob(".*.part")), timeout=60, what="the .part file")
        temp_files = list((env / "tmp").rglob("skuport-export-*"))
        assert temp_files, "the export's temporary file exists while delivering"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    assert any(folder.glob(".*.part")) and all(path.exists() for path in temp_files)
    # when the server starts again: its sweep removes the dead process's temporary files
    assert workdir.sweep() == 1
    assert not any(path.exists() for path in temp_files)
    # and the reaper retries the run, whose delivery replaces the .part file it left
    last = get_run(run_id).heartbeat_at
    assert last is not None
    worker = Worker(instant=False)
    scheduler = Scheduler(executor=worker, settings=get_settings())
    assert scheduler.tick(last + dt.timedelta(seconds=91)).reaped == [run_id]
    (retry_id,) = scheduler.tick(last + dt.timedelta(hours=1)).retried
    assert run_export_job(retry_id) == "success"
    assert [p.name for p in folder.iterdir()] == [f"feed-{get_run(run_id).scheduled_for:%Y-%m-%d}.csv"]
    assert not list((env / "tmp").rglob("skuport-export-*"))


def test_progress_shows_from_the_first_second_and_final_counts_stay(
    client: TestClient, admin: dict[str, str], records: None, env: Path, receiver: servers.Receiver
) -> None:
    receiver.script = [("sleep", 1.5, 200)]
    job_id = make(client, admin, "webhook", {"url": receiver.url()})
    run_id = run_now(client, admin, job_id)
    wait_until(lambda: bool(receiver.requests), what="the delivery")

    def progress() -> Any:
        return client.get(f"/api/v1/export-jobs/{job_id}/runs/{run_id}", headers=admin).json()["progress"]

    assert progress()["total"] > 0  # the first report is written at once
    wait_until(lambda: progress()["done"] == progress()["total"], timeout=1, what="progress at 100 %")
    assert get_run(run_id).status == "running"  # still delivering
    done = ended(run_id)
    assert done.status == "success"
    body = client.get(f"/api/v1/export-jobs/{job_id}/runs/{run_id}", headers=admin).json()
    assert body["progress"] == {"done": done.record_count, "total": done.record_count}


def test_a_reaped_run_is_fenced_out_of_its_delivery(
    client: TestClient, admin: dict[str, str], records: None, env: Path, receiver: servers.Receiver
) -> None:
    # given a run whose webhook retries, when another scheduler reaps it (its heartbeat looked stale)
    receiver.script = [("respond", 503, {}, b"busy")] * 10
    job_id = make(client, admin, "webhook", {"url": receiver.url(), "maxAttempts": 10})
    run_id = run_now(client, admin, job_id)
    wait_until(lambda: len(receiver.requests) >= 1, what="the first attempt")
    with session_scope() as session:
        session.execute(
            update(ExportRun)
            .where(ExportRun.id == run_id)
            .values(status="failed", error="worker lost (reaped elsewhere)")
        )
    reaped = time.time()
    # then the owner sees it at its next fence check and posts nothing more
    wait_until(lambda: LIFECYCLE.leases() == [], timeout=10, what="the lease released")
    time.sleep(1)
    assert max(arrivals(receiver)) <= reaped + 0.05
    assert get_run(run_id).error == "worker lost (reaped elsewhere)"  # the reaper's outcome stands
    assert RUNS.task == "export-run"


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A tiny tmpfs filled to the last byte (mounting needs root, as on CI)."""
    mount = tmp_path / "full"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], check=True)
    try:
        with contextlib.suppress(OSError), (mount / "filler").open("wb") as filler:
            while True:
                filler.write(b"\0" * 4096)
                filler.flush()
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a full tmpfs needs root (CI runs as root)")
def test_a_full_temporary_folder_is_reported_as_such(
    client: TestClient,
    admin: dict[str, str],
    records: None,
    env: Path,
    full_disk: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SKUPORT_TMP_DIR", str(full_disk))
    get_settings.cache_clear()
    job_id = make(client, admin, "local", {"path": "full"})
    run = ended(run_now(client, admin, job_id))
    assert run.status == "failed" and run.error is not None
    expected = f"Could not write the export file: no space left on the device in {full_disk}"
    assert run.error.startswith(expected)
    assert "SKUPORT_TMP_DIR" in run.error and "internal error" not in run.error
