"""End to end: a "* * * * *" job, the scheduler, the in-process executor, the real pipeline, real servers.

Each test creates a job through the API, lets a scheduler tick at the job's next run time, and
waits for the run the executor carried out: a success whose recordCount, fileSize and
destinationPath match the file found at the destination (moto S3, Azurite, asyncssh SFTP, a
webhook receiver, the local folder).
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from skuport.config import get_settings
from skuport.db import session_scope
from skuport.jobs.models import ExportRun
from skuport.jobs.scheduler import Scheduler
from skuport.jobs.tasks import RUNS
from skuport.records.models import Record
from skuport.scheduling.executor import InMemoryExecutor
from skuport.scheduling.lifecycle import Failure
from tests.exporting.destinations import servers

UTC = dt.UTC


@pytest.fixture
def records(admin: dict[str, str]) -> int:
    """The seed records (schema-apparel); returns how many the export must contain."""
    from skuport.demo import load_seed_records

    with session_scope() as session:
        load_seed_records(session)
        return int(
            session.scalar(
                select(func.count()).select_from(Record).where(Record.schema_id == "schema-apparel")
            )
            or 0
        )


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """Local root in a temporary folder, loopback webhooks allowed, quick heartbeats."""
    root = tmp_path / "local-root"
    monkeypatch.setenv("SKUPORT_LOCAL_ROOT", str(root))
    monkeypatch.setenv("SKUPORT_WEBHOOK_ALLOW_PRIVATE", "true")
    monkeypatch.setenv("SKUPORT_RUN_HEARTBEAT_INTERVAL", "0.5")
    get_settings.cache_clear()
    yield root
    monkeypatch.undo()
    get_settings.cache_clear()


def create_job(
    client: TestClient, admin: dict[str, str], destination_type: str, config: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    body = {
        "name": f"e2e {destination_type}",
        "destinationType": destination_type,
        "destinationConfig": config,
        "format": "csv",
        "schemaId": "schema-apparel",
        "dimensionScope": {"dim-language": "seg-en"},
        "schedule": "* * * * *",
        "filenameTemplate": "products-{date}.csv",
        **extra,
    }
    response = client.post("/api/v1/export-jobs", json=body, headers=admin)
    assert response.status_code == 201, response.text
    return dict(response.json())


def wait_for(client: TestClient, admin: dict[str, str], job_id: str, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run = client.get(f"/api/v1/export-jobs/{job_id}/runs/{run_id}", headers=admin).json()
        if run["status"] != "running":
            return dict(run)
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} still running")


def scheduled_run(client: TestClient, admin: dict[str, str], job: dict[str, Any]) -> dict[str, Any]:
    """Tick a scheduler (real executor) at the job's next run time; return the finished run."""
    tick = dt.datetime.fromisoformat(job["nextRunAt"].replace("Z", "+00:00"))
    assert tick.second == 0 and tick - dt.datetime.now(UTC) <= dt.timedelta(minutes=1)
    report = Scheduler().tick(tick + dt.timedelta(seconds=1))
    assert len(report.started) == 1, report
    run = wait_for(client, admin, job["id"], report.started[0])
    assert run["scheduledFor"] == job["nextRunAt"] and run["trigger"] == "schedule"
    return run


def check_csv(content: bytes, run: dict[str, Any], records: int) -> None:
    assert run["status"] == "success", run["error"]
    assert run["recordCount"] == records > 0
    assert run["fileSize"] == len(content)
    assert run["error"] is None and run["completedAt"] is not None
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    assert len(rows) == records + 1  # header + one row per record
    assert "sku" in rows[0]


def test_local(client: TestClient, admin: dict[str, str], records: int, env: Path) -> None:
    job = create_job(client, admin, "local", {"path": "feeds/products"})
    run = scheduled_run(client, admin, job)
    target = env / "feeds" / "products" / f"products-{run['scheduledFor'][:10]}.csv"
    assert run["destinationPath"] == target.as_uri()
    check_csv(target.read_bytes(), run, records)
    # the run history shows it, newest first
    history = client.get(f"/api/v1/export-jobs/{job['id']}/runs", headers=admin).json()
    assert [r["id"] for r in history] == [run["id"]]


def test_run_now_compressed_json(client: TestClient, admin: dict[str, str], records: int, env: Path) -> None:
    job = create_job(
        client,
        admin,
        "local",
        {"path": "manual"},
        format="json",
        compress=True,
        filenameTemplate="{jobId}-{runId}.json.gz",
    )
    started = client.post(f"/api/v1/export-jobs/{job['id']}/run", headers=admin)
    assert started.status_code == 202
    run = wait_for(client, admin, job["id"], started.json()["id"])
    assert run["status"] == "success", run["error"]
    target = env / "manual" / f"{job['id']}-{run['id']}.json.gz"
    assert run["destinationPath"] == target.as_uri() and run["fileSize"] == target.stat().st_size
    import orjson

    assert len(orjson.loads(gzip.decompress(target.read_bytes()))) == run["recordCount"] == records


def test_a_retry_writes_the_same_destination_path(
    client: TestClient, admin: dict[str, str], records: int, env: Path
) -> None:
    job = create_job(
        client, admin, "local", {"path": "retry"}, filenameTemplate="{jobId}-{runId}-{datetime}.csv"
    )
    tick = dt.datetime.fromisoformat(job["nextRunAt"].replace("Z", "+00:00"))
    # the first attempt is claimed but its worker dies before doing anything
    report = Scheduler(executor=InMemoryExecutor()).tick(tick)
    (first_id,) = report.started
    with session_scope() as session:
        lost = Failure("WorkerLost", "worker lost", retry=True)
        RUNS.fail(
            session,
            where=ExportRun.id == first_id,
            failure=lost,
            now=dt.datetime.now(UTC) - dt.timedelta(minutes=5),
        )
    retried = Scheduler().tick(dt.datetime.now(UTC)).retried
    assert len(retried) == 1
    run = wait_for(client, admin, job["id"], retried[0])
    assert run["status"] == "success" and run["attempt"] == 2 and run["trigger"] == "retry"
    name = f"{job['id']}-{first_id}-{tick:%Y%m%dT%H%M%S}.csv"  # the first attempt's id and tick
    assert run["destinationPath"] == (env / "retry" / name).as_uri()
    check_csv((env / "retry" / name).read_bytes(), run, records)


def test_delta_exports_only_what_changed(
    client: TestClient, admin: dict[str, str], records: int, env: Path
) -> None:
    job = create_job(client, admin, "local", {"path": "delta"}, delta=True, filenameTemplate="{runId}.csv")
    first = client.post(f"/api/v1/export-jobs/{job['id']}/run", headers=admin).json()
    first = wait_for(client, admin, job["id"], first["id"])
    assert first["recordCount"] == records
    with session_scope() as session:
        some = session.scalars(select(Record.id).where(Record.schema_id == "schema-apparel").limit(1)).one()
        session.execute(update(Record).where(Record.id == some).values(updated_at=dt.datetime.now(UTC)))
    second = client.post(f"/api/v1/export-jobs/{job['id']}/run", headers=admin).json()
    second = wait_for(client, admin, job["id"], second["id"])
    assert second["status"] == "success" and second["recordCount"] == 1


# -- real servers -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def azurite() -> Iterator[servers.Azurite]:
    with tempfile.TemporaryDirectory(prefix="azurite-") as workdir, servers.azurite(Path(workdir)) as server:
        yield server


@pytest.fixture(scope="module")
def sftp() -> Iterator[servers.SftpServer]:
    with tempfile.TemporaryDirectory(prefix="sftp-root-") as root, servers.sftp_server(Path(root)) as server:
        yield server


@pytest.fixture(scope="module")
def receiver() -> Iterator[servers.Receiver]:
    receiver = servers.Receiver()
    try:
        yield receiver
    finally:
        receiver.stop()


def test_s3(client: TestClient, admin: dict[str, str], records: int, env: Path, moto_endpoint: str) -> None:
    bucket = f"feeds-{uuid.uuid4().hex[:10]}"
    s3 = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name="eu-west-1",
        aws_access_key_id="reader",
        aws_secret_access_key="reader-secret",
    )
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    job = create_job(
        client,
        admin,
        "s3",
        {
            "bucket": bucket,
            "path": "feeds/products/",
            "region": "eu-west-1",
            "endpointUrl": moto_endpoint,
            "accessKeyId": "AKIAEXPORTER",
            "secretAccessKey": "s3-secret-do-not-leak",
        },
    )
    assert job["destinationConfig"]["secretAccessKey"] == "********"
    run = scheduled_run(client, admin, job)
    key = f"feeds/products/products-{run['scheduledFor'][:10]}.csv"
    assert run["destinationPath"] == f"s3://{bucket}/{key}"
    check_csv(s3.get_object(Bucket=bucket, Key=key)["Body"].read(), run, records)


def test_azure_blob(
    client: TestClient, admin: dict[str, str], records: int, env: Path, azurite: servers.Azurite
) -> None:
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = f"feeds-{uuid.uuid4().hex[:10]}"
    service.create_container(container)
    job = create_job(
        client,
        admin,
        "azure-blob",
        {"container": container, "path": "feeds", "connectionString": azurite.connection_string},
    )
    run = scheduled_run(client, admin, job)
    blob = f"feeds/products-{run['scheduledFor'][:10]}.csv"
    assert run["destinationPath"] == f"{azurite.endpoint}/{container}/{blob}"
    content = service.get_blob_client(container, blob).download_blob().readall()
    check_csv(content, run, records)


def test_sftp(
    client: TestClient, admin: dict[str, str], records: int, env: Path, sftp: servers.SftpServer
) -> None:
    folder = f"drop-{uuid.uuid4().hex[:8]}"
    (sftp.root / folder).mkdir()
    job = create_job(
        client,
        admin,
        "sftp",
        {
            "host": "127.0.0.1",
            "port": sftp.port,
            "username": sftp.username,
            "password": sftp.password,
            "path": folder,
            "hostKeyFingerprint": sftp.fingerprint,
        },
    )
    run = scheduled_run(client, admin, job)
    name = f"products-{run['scheduledFor'][:10]}.csv"
    assert run["destinationPath"] == f"sftp://127.0.0.1:{sftp.port}/{folder}/{name}"
    check_csv((sftp.root / folder / name).read_bytes(), run, records)
    assert not [p for p in (sftp.root / folder).iterdir() if p.name != name]  # no .part left behind


def test_webhook(
    client: TestClient, admin: dict[str, str], records: int, env: Path, receiver: servers.Receiver
) -> None:
    from standardwebhooks import Webhook

    receiver.reset()
    secret = "whsec_" + __import__("base64").b64encode(b"e2e-webhook-signing-key-0123456").decode()
    job = create_job(client, admin, "webhook", {"url": receiver.url("/hooks/feed"), "secret": secret})
    run = scheduled_run(client, admin, job)
    assert run["destinationPath"] == receiver.url("/hooks/feed")
    (request,) = receiver.requests
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert headers["webhook-id"] == run["id"]  # the delivery id is the run id
    check_csv(request.body, run, records)
    expected = Webhook(secret).sign(
        headers["webhook-id"],
        dt.datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC),
        request.body.decode(),
    )
    assert expected.split(",", 1)[1] in headers["webhook-signature"]
