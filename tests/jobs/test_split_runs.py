"""Export jobs that split their files: every part delivered under the lease, a manifest last, a retry
that replaces all parts, against real servers (moto S3, the HTTP receiver, the local folder)."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import io
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest
import standardwebhooks
from fastapi.testclient import TestClient
from sqlalchemy import update

from skuport.config import get_settings
from skuport.db import session_scope
from skuport.exporting import manifest as manifests
from skuport.exporting.manifest import read_manifest
from skuport.jobs.models import ExportRun, RunStatus
from skuport.jobs.scheduler import Scheduler
from skuport.jobs.tasks import run_export_job
from skuport.records.models import Record
from skuport.records.service import delete_record
from tests.exporting.destinations import servers
from tests.jobs.conftest import Worker, get_run
from tests.jobs.test_ownership import ended, env, make, queued_run, receiver, records, run_now

__all__ = ["env", "receiver", "records"]  # fixtures

SECRET = "whsec_" + "c3BsaXQtcGFydHMtc2VjcmV0LWtleS0xMjM0NTY="


def rows_of(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


@pytest.fixture
def catalogue(records: None) -> None:
    """The seed records and a few more products."""
    from tests.exporting.factories import g, make_record

    with session_scope() as session:
        for i in range(5):
            make_record(session, {"sku": g(f"SPLIT-{i}")}, record_id=f"ent-split-{i}")


def record_count() -> int:
    with session_scope() as session:
        return session.query(Record).filter(Record.schema_id == "schema-apparel").count()


def test_s3_parts_and_a_manifest_that_verifies(
    client: TestClient, admin: dict[str, str], catalogue: None, env: Path, moto_endpoint: str
) -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    s3.create_bucket(Bucket="split-parts")
    config = {
        "bucket": "split-parts",
        "path": "feeds",
        "region": "us-east-1",
        "endpointUrl": moto_endpoint,
        "accessKeyId": "test",
        "secretAccessKey": "test",
    }
    total = record_count()
    assert total > 2
    job_id = make(client, admin, "s3", config, maxRecordsPerFile=2, manifest=True)
    whole_id = make(client, admin, "s3", {**config, "path": "whole"})
    run = ended(run_now(client, admin, job_id))
    whole = ended(run_now(client, admin, whole_id))
    assert run.status == whole.status == "success", (run.error, whole.error)
    day = f"{run.scheduled_for:%Y-%m-%d}"
    assert run.destination_path == f"s3://split-parts/feeds/feed-{day}.manifest.json"
    document = read_manifest(
        s3.get_object(Bucket="split-parts", Key=f"feeds/feed-{day}.manifest.json")["Body"].read()
    )
    assert (document["jobId"], document["runId"], document["recordCount"]) == (job_id, run.id, total)
    assert document["scheduledFor"].startswith(day) and document["selection"]["maxRecordsPerFile"] == 2
    parts = document["files"]
    assert [p["name"] for p in parts] == [f"feed-{day}-{i:03d}.csv" for i in range(1, len(parts) + 1)]
    assert len(parts) == -(-total // 2) and sum(p["recordCount"] for p in parts) == total
    joined: list[list[str]] = []
    for part in parts:  # each part verifies against the manifest, read back by an independent client
        body = s3.get_object(Bucket="split-parts", Key=f"feeds/{part['name']}")["Body"].read()
        assert len(body) == part["byteSize"] and hashlib.sha256(body).hexdigest() == part["sha256"]
        assert part["path"] == f"s3://split-parts/feeds/{part['name']}"
        header, *lines = rows_of(body)
        assert len(lines) == part["recordCount"]
        joined.extend(lines)
    whole_rows = rows_of(s3.get_object(Bucket="split-parts", Key=f"whole/feed-{day}.csv")["Body"].read())
    assert [header, *joined] == whole_rows  # the parts concatenate to the unsplit export
    shown = client.get(f"/api/v1/export-jobs/{job_id}/runs/{run.id}", headers=admin).json()
    assert shown["files"] == parts and shown["destinationPath"] == run.destination_path
    assert shown["fileSize"] == sum(p["byteSize"] for p in parts)
    assert (
        client.get(f"/api/v1/export-jobs/{whole_id}/runs/{whole.id}", headers=admin).json()["files"] is None
    )
    job = client.get(f"/api/v1/export-jobs/{job_id}", headers=admin).json()
    assert (job["maxRecordsPerFile"], job["manifest"]) == (2, True)


def test_webhook_parts_arrive_in_order_signed_and_the_manifest_last(
    client: TestClient, admin: dict[str, str], catalogue: None, env: Path, receiver: servers.Receiver
) -> None:
    job_id = make(
        client,
        admin,
        "webhook",
        {"url": receiver.url(), "secret": SECRET},
        maxRecordsPerFile=3,
        manifest=True,
        filenameTemplate="feed.csv",
    )
    run = ended(run_now(client, admin, job_id))
    assert run.status == "success", run.error
    verifier = standardwebhooks.Webhook(SECRET)
    names, bodies = [], []
    for request in receiver.requests:
        # signed with the job's secret (a part is csv: signed as its text; the manifest verifies whole)
        at = dt.datetime.fromtimestamp(int(request.headers["webhook-timestamp"]), dt.UTC)
        expected = verifier.sign(request.headers["webhook-id"], at, request.body.decode())
        assert expected in request.headers["webhook-signature"].split()
        names.append(request.headers["Content-Disposition"].split('filename="')[1].split('"')[0])
        bodies.append(request.body)
    assert names[-1] == "feed.manifest.json" and names[:-1] == [
        f"feed-{i:03d}.csv" for i in range(1, len(names))
    ]
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert len(set(ids)) == len(ids)  # each part its own idempotency key
    document = read_manifest(bodies[-1])
    # a part's id follows its content: a receiver de-duplicating a retry's parts keeps what the manifest lists
    assert all(i.endswith(f["sha256"][:16]) for i, f in zip(ids, document["files"], strict=False))
    assert verifier.verify(bodies[-1], receiver.requests[-1].headers)["runId"] == run.id
    for entry, body in zip(document["files"], bodies[:-1], strict=True):
        assert entry["sha256"] == hashlib.sha256(body).hexdigest()
    assert receiver.requests[-1].headers["Content-Type"] == "application/json"
    assert receiver.requests[0].headers["Content-Type"].startswith("text/csv")


def test_a_retry_replaces_every_part_and_removes_those_it_does_not_deliver_again(
    client: TestClient, admin: dict[str, str], catalogue: None, env: Path
) -> None:
    job_id = make(
        client,
        admin,
        "local",
        {"path": "parts"},
        maxRecordsPerFile=1,
        manifest=True,
        filenameTemplate="sub/feed-{date}.csv",
    )
    first = ended(run_now(client, admin, job_id))
    assert first.status == "success", first.error
    folder = env / "root" / "parts" / "sub"
    day = f"{first.scheduled_for:%Y-%m-%d}"
    bystander = env / "root" / "parts" / f"feed-{day}-007.csv"  # same name, another folder: not ours
    bystander.write_bytes(b"another job's file")
    before = sorted(p.name for p in folder.iterdir())
    total = record_count()
    assert len(before) == total + 1  # one part per record, and the manifest
    # As if the attempt had lost its lease right after delivering: failed, to be retried.
    now = dt.datetime.now(dt.UTC)
    with session_scope() as session:
        session.execute(
            update(ExportRun)
            .where(ExportRun.id == first.id)
            .values(status=RunStatus.FAILED, error="worker lost", retry_at=now)
        )
    with session_scope() as session:  # fewer records now
        for i in range(5):
            delete_record(session, record_id=f"ent-split-{i}", user_id=None)
    left = record_count()
    assert 0 < left < total
    report = Scheduler(executor=Worker(instant=False), settings=get_settings()).tick(
        now + dt.timedelta(seconds=1)
    )
    (retry_id,) = report.retried
    assert run_export_job(retry_id) == "success"
    retry = get_run(retry_id)
    after = sorted(p.name for p in folder.iterdir())
    assert after == sorted(
        [*(f"feed-{day}-{i:03d}.csv" for i in range(1, left + 1)), f"feed-{day}.manifest.json"]
    )
    document = read_manifest((folder / f"feed-{day}.manifest.json").read_bytes(), folder)  # hashes verify
    assert document["runId"] == retry.id and len(document["files"]) == left
    shown = client.get(f"/api/v1/export-jobs/{job_id}/runs/{retry.id}", headers=admin).json()["files"]
    assert shown == document["files"]
    assert bystander.read_bytes() == b"another job's file"


def test_a_run_failing_half_way_takes_back_the_parts_it_delivered(
    client: TestClient, admin: dict[str, str], catalogue: None, env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = make(client, admin, "local", {"path": "half"}, maxRecordsPerFile=1, manifest=True)

    def broken(*args: Any, **kwargs: Any) -> bytes:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(manifests, "manifest", broken)  # every part delivered, then the manifest fails
    run_id = queued_run(job_id)
    assert run_export_job(run_id) == "failed"
    run = get_run(run_id)
    assert run.status == "failed" and run.files == []
    folder = env / "root" / "half"
    assert sorted(p.name for p in folder.iterdir()) == []  # nothing left behind


@pytest.mark.parametrize("compress", [False, True])
def test_a_one_off_export_in_parts_downloads_as_one_zip_with_its_manifest(
    client: TestClient, admin: dict[str, str], compress: bool
) -> None:
    from tests.exports.helpers import add_many, read_csv, run

    add_many(7)
    body = {
        "format": "csv",
        "fields": ["sku"],
        "maxRecordsPerFile": 3,
        "manifest": True,
        "compress": compress,
    }
    done = run(client, admin, **body)
    assert done["status"] == "completed" and done["filename"] == f"{done['id']}.zip"
    assert (done["maxRecordsPerFile"], done["manifest"]) == (3, True)
    response = client.get(f"/api/v1/exports/{done['id']}/download", headers=admin)
    assert response.headers["content-type"] == "application/zip"
    assert hashlib.sha256(response.content).hexdigest() == done["sha256"]
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    extension = "csv.gz" if compress else "csv"
    parts = [f"{done['id']}-{i:03d}.{extension}" for i in (1, 2, 3)]
    assert archive.namelist() == [*parts, f"{done['id']}.manifest.json"]
    document = read_manifest(archive.read(f"{done['id']}.manifest.json"))
    assert document["exportId"] == done["id"] and document["recordCount"] == 7 == done["recordCount"]
    skus = []
    for entry, name in zip(document["files"], parts, strict=True):
        data = archive.read(name)
        assert entry["name"] == name and entry["sha256"] == hashlib.sha256(data).hexdigest()
        skus += [row["sku"] for row in read_csv(gzip.decompress(data) if compress else data)]
    assert [f["recordCount"] for f in document["files"]] == [3, 3, 1] and len(skus) == 7
    # members carry their sizes up front (no data descriptors: streaming unzippers read stored members)
    assert all(not info.flag_bits & 0x08 for info in archive.infolist())


def test_too_many_parts_are_refused(
    client: TestClient, admin: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from skuport.exporting import pipeline
    from tests.exports.helpers import add_many

    add_many(7)
    monkeypatch.setattr(pipeline, "MAX_PARTS", 3)
    response = client.post("/api/v1/exports", json={"format": "csv", "maxRecordsPerFile": 2}, headers=admin)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "too_many_parts" and "at least 3" in error["message"]


def test_max_records_per_file_is_checked(client: TestClient, admin: dict[str, str]) -> None:
    body = {
        "name": "bad parts",
        "destinationType": "local",
        "destinationConfig": {"path": "x"},
        "format": "csv",
        "schedule": "0 0 1 1 *",
        "filenameTemplate": "x.csv",
        "maxRecordsPerFile": 0,
    }
    response = client.post("/api/v1/export-jobs", json=body, headers=admin)
    assert response.status_code == 422 and "maxRecordsPerFile" in response.text


def test_a_run_that_times_out_half_way_takes_back_its_parts(
    client: TestClient, admin: dict[str, str], catalogue: None, env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from skuport.exporting.destinations.local import LocalDestination

    job_id = make(client, admin, "local", {"path": "late"}, maxRecordsPerFile=2)
    real = LocalDestination.deliver
    delivered: list[str] = []

    def deliver(self: Any, delivery: Any) -> str:
        if len(delivered) == 2:
            delivery.fence.stop("timeout")  # the hard timeout strikes before the third part
        path = real(self, delivery)
        delivered.append(path)
        return path

    monkeypatch.setattr(LocalDestination, "deliver", deliver)
    run_id = queued_run(job_id)
    assert run_export_job(run_id) == "failed"
    run = get_run(run_id)
    assert run.error is not None and "timed out" in run.error
    assert len(delivered) == 2 and run.files == []
    assert list((env / "root" / "late").iterdir()) == []  # the two parts were taken back
