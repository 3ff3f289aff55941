"""Every curl example of seed 000 against a server started as the README says (SQLite or PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.live import suite_server
from tests.seeds import SEED_CREATE as CREATE
from tests.seeds import SEED_KEYS as JOB_KEYS
from tests.seeds import SEED_PUT

JOB = "/export-jobs/expjob-nightly-feed"
RUN_KEYS = [
    "id",
    "jobId",
    "status",
    "startedAt",
    "completedAt",
    "recordCount",
    "fileSize",
    "destinationPath",
    "error",
]


@pytest.fixture(scope="module")
def api() -> Iterator[httpx.Client]:
    with suite_server() as live:
        with httpx.Client(base_url=f"{live.url}/api/v1", headers=live.headers, timeout=30) as client:
            yield client


def test_create_job(api: httpx.Client) -> None:
    response = api.post("/export-jobs", json=CREATE)
    assert response.status_code == 201
    body = response.json()
    assert list(body)[: len(JOB_KEYS)] == JOB_KEYS
    assert {k: body[k] for k in CREATE} == CREATE
    assert body["id"].startswith("expjob-") and body["createdAt"] == body["updatedAt"]


def test_list_jobs(api: httpx.Client) -> None:
    jobs = api.get("/export-jobs").json()
    assert isinstance(jobs, list) and "expjob-nightly-feed" in [j["id"] for j in jobs]


def test_get_job(api: httpx.Client) -> None:
    body = api.get(JOB).json()
    assert body["id"] == "expjob-nightly-feed"
    assert {k: body[k] for k in CREATE} == CREATE


def test_list_runs(api: httpx.Client) -> None:
    runs = api.get(f"{JOB}/runs", params={"limit": 5}).json()
    assert [r["id"] for r in runs] == ["run-20260308-020000", "run-20260307-020000", "run-20260306-020000"]
    assert all(list(r)[: len(RUN_KEYS)] == RUN_KEYS for r in runs)
    assert {k: runs[0][k] for k in RUN_KEYS} == {
        "id": "run-20260308-020000",
        "jobId": "expjob-nightly-feed",
        "status": "success",
        "startedAt": "2026-03-08T02:00:00.000Z",
        "completedAt": "2026-03-08T02:00:14.320Z",
        "recordCount": 347,
        "fileSize": 84210,
        "destinationPath": "s3://sigma-exports/feeds/products/products-2026-03-08.csv.gz",
        "error": None,
    }
    failed = runs[2]
    assert (
        failed["status"] == "failed" and failed["recordCount"] is None and failed["destinationPath"] is None
    )
    assert failed["error"].startswith("S3 PutObject failed: Access Denied (403).")
    assert len(api.get(f"{JOB}/runs", params={"limit": 1}).json()) == 1


def test_record_run(api: httpx.Client) -> None:
    body = {
        "status": "success",
        "startedAt": "2026-03-09T02:00:00.000Z",
        "completedAt": "2026-03-09T02:00:14.320Z",
        "recordCount": 347,
        "fileSize": 84210,
        "destinationPath": "s3://sigma-exports/feeds/products/products-2026-03-08.csv.gz",
    }
    response = api.post(f"{JOB}/runs", json=body)
    assert response.status_code == 201
    run = response.json()
    assert run["jobId"] == "expjob-nightly-feed" and run["trigger"] == "external"
    assert {k: run[k] for k in body} == body
    assert api.get(f"{JOB}/runs", params={"limit": 1}).json()[0]["id"] == run["id"]


def test_pause_and_resume(api: httpx.Client) -> None:
    paused = api.post(f"{JOB}/pause")
    assert paused.status_code == 200 and paused.json()["active"] is False
    assert api.post(f"{JOB}/pause").status_code == 409
    resumed = api.post(f"{JOB}/resume")
    assert resumed.status_code == 200 and resumed.json()["active"] is True
    assert resumed.json()["nextRunAt"] is not None


def test_update_job(api: httpx.Client) -> None:
    body = api.put(JOB, json=SEED_PUT).json()
    assert {k: body[k] for k in SEED_PUT} == SEED_PUT
    assert body["destinationConfig"] == CREATE["destinationConfig"] and body["format"] == "csv"


def test_delete_job(api: httpx.Client) -> None:
    response = api.delete(JOB)
    assert response.status_code == 200 and response.json() == {"deleted": True}
    assert api.get(JOB).status_code == 404
    assert api.get(f"{JOB}/runs").status_code == 404
