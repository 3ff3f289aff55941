"""Seed 000 examples, byte-for-byte in field names and shapes, plus the API beyond the seed."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient

from skuport.db import session_scope
from skuport.jobs.models import ExportJob, ExportRun
from skuport.scheduling.executor import InMemoryExecutor
from tests.factories import make_user
from tests.seeds import SEED_CREATE, SEED_KEYS, SEED_PUT

SEED_CREATED = {
    "id": "expjob-nightly-feed",
    **SEED_CREATE,
}
SEED_RUNS: list[dict[str, Any]] = [
    {
        "id": "run-20260308-020000",
        "jobId": "expjob-nightly-feed",
        "status": "success",
        "startedAt": "2026-03-08T02:00:00.000Z",
        "completedAt": "2026-03-08T02:00:14.320Z",
        "recordCount": 347,
        "fileSize": 84210,
        "destinationPath": "s3://sigma-exports/feeds/products/products-2026-03-08.csv.gz",
        "error": None,
    },
    {
        "id": "run-20260307-020000",
        "jobId": "expjob-nightly-feed",
        "status": "success",
        "startedAt": "2026-03-07T02:00:00.000Z",
        "completedAt": "2026-03-07T02:00:12.880Z",
        "recordCount": 345,
        "fileSize": 83540,
        "destinationPath": "s3://sigma-exports/feeds/products/products-2026-03-07.csv.gz",
        "error": None,
    },
    {
        "id": "run-20260306-020000",
        "jobId": "expjob-nightly-feed",
        "status": "failed",
        "startedAt": "2026-03-06T02:00:00.000Z",
        "completedAt": "2026-03-06T02:00:03.150Z",
        "recordCount": None,
        "fileSize": None,
        "destinationPath": None,
        "error": "S3 PutObject failed: Access Denied (403). "
        "Check IAM permissions for bucket 'sigma-exports'.",
    },
]
SEED_RUN_POST = {
    "status": "success",
    "startedAt": "2026-03-08T02:00:00.000Z",
    "completedAt": "2026-03-08T02:00:14.320Z",
    "recordCount": 347,
    "fileSize": 84210,
    "destinationPath": "s3://sigma-exports/feeds/products/products-2026-03-08.csv.gz",
}
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
ISO_Z = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"


def _seed_job(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    response = client.post(
        "/api/v1/export-jobs", json={"id": "expjob-nightly-feed", **SEED_CREATE}, headers=headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_seed_create_nightly_s3_export(client: TestClient, admin: dict[str, str]) -> None:
    # given the seed's request body with the seed's id; when it is posted
    body = _seed_job(client, admin)
    # then every field of the seed's response is there, with the same value, in the same order
    assert list(body)[: len(SEED_KEYS)] == SEED_KEYS
    assert {k: body[k] for k in SEED_CREATED} == SEED_CREATED
    assert body["createdAt"] == body["updatedAt"]
    assert __import__("re").match(ISO_Z, body["createdAt"])
    # and the additions: time zone, next run, human schedule
    assert body["timezone"] == "UTC"
    assert body["scheduleDescription"] == "At 02:00"
    assert body["nextRunAt"].endswith("T02:00:00.000Z")
    assert body["catalogId"] is None


def test_seed_create_generates_an_id_and_defaults(client: TestClient, admin: dict[str, str]) -> None:
    payload = {
        k: v
        for k, v in SEED_CREATE.items()
        if k not in ("active", "includeVariants", "compress", "filenameTemplate", "description")
    }
    response = client.post("/api/v1/export-jobs", json=payload, headers=admin)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["id"].startswith("expjob-") and len(body["id"]) > len("expjob-")
    assert body["active"] is True
    assert body["includeVariants"] is True
    assert body["compress"] is False
    assert body["description"] is None
    assert body["filenameTemplate"] == "{jobId}-{datetime}.csv"


def test_seed_list_and_get(client: TestClient, admin: dict[str, str]) -> None:
    created = _seed_job(client, admin)
    listed = client.get("/api/v1/export-jobs", headers=admin)
    assert listed.status_code == 200
    assert listed.json() == [created]
    got = client.get("/api/v1/export-jobs/expjob-nightly-feed", headers=admin)
    assert got.status_code == 200
    assert got.json() == created


def test_seed_put_replaces_only_the_fields_it_carries(client: TestClient, admin: dict[str, str]) -> None:
    created = _seed_job(client, admin)
    response = client.put("/api/v1/export-jobs/expjob-nightly-feed", json=SEED_PUT, headers=admin)
    assert response.status_code == 200, response.text
    body = response.json()
    for key, value in SEED_PUT.items():
        assert body[key] == value
    for key in (
        "description",
        "destinationType",
        "destinationConfig",
        "format",
        "schemaId",
        "dimensionScope",
        "includeVariants",
        "active",
        "createdAt",
        "id",
    ):
        assert body[key] == created[key]
    assert body["scheduleDescription"] == "At 03:00"
    assert body["nextRunAt"].endswith("T03:00:00.000Z")
    assert client.get("/api/v1/export-jobs/expjob-nightly-feed", headers=admin).json() == body


def test_put_accepts_the_full_object_as_get_returns_it(client: TestClient, admin: dict[str, str]) -> None:
    created = _seed_job(client, admin)
    response = client.put(
        "/api/v1/export-jobs/expjob-nightly-feed", json={**created, "name": "Renamed"}, headers=admin
    )
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Renamed"


def test_a_job_may_carry_its_own_timeout(client: TestClient, admin: dict[str, str]) -> None:
    created = _seed_job(client, admin)
    assert created["timeoutSeconds"] is None  # the server's SKUPORT_RUN_TIMEOUT
    url = "/api/v1/export-jobs/expjob-nightly-feed"
    bad = client.put(url, json={"timeoutSeconds": 0}, headers=admin)
    assert bad.status_code == 422 and "timeoutSeconds" in bad.text
    assert client.put(url, json={"timeoutSeconds": 900}, headers=admin).json()["timeoutSeconds"] == 900
    assert client.put(url, json={"name": "Renamed"}, headers=admin).json()["timeoutSeconds"] == 900
    assert client.put(url, json={"timeoutSeconds": None}, headers=admin).json()["timeoutSeconds"] is None


def test_put_is_validated_as_a_whole(client: TestClient, admin: dict[str, str]) -> None:
    _seed_job(client, admin)
    response = client.put(
        "/api/v1/export-jobs/expjob-nightly-feed", json={"destinationType": "webhook"}, headers=admin
    )
    # the s3 config does not fit a webhook: the merged job is checked, not just the sent fields
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    assert (
        client.get("/api/v1/export-jobs/expjob-nightly-feed", headers=admin).json()["destinationType"] == "s3"
    )


def test_seed_delete_removes_the_job_and_its_runs(client: TestClient, admin: dict[str, str]) -> None:
    _seed_job(client, admin)
    runner = make_user("user-runner-x", "role-runner")
    assert (
        client.post(
            "/api/v1/export-jobs/expjob-nightly-feed/runs", json=SEED_RUN_POST, headers=runner
        ).status_code
        == 201
    )
    response = client.delete("/api/v1/export-jobs/expjob-nightly-feed", headers=admin)
    assert response.status_code == 200
    assert response.json() == {"deleted": True}
    assert client.get("/api/v1/export-jobs/expjob-nightly-feed", headers=admin).status_code == 404
    with session_scope() as session:
        assert session.query(ExportRun).count() == 0
    assert client.delete("/api/v1/export-jobs/expjob-nightly-feed", headers=admin).status_code == 404


def test_seed_pause_and_resume(client: TestClient, admin: dict[str, str]) -> None:
    _seed_job(client, admin)
    paused = client.post("/api/v1/export-jobs/expjob-nightly-feed/pause", headers=admin)
    assert paused.status_code == 200
    assert paused.json()["active"] is False
    assert paused.json()["nextRunAt"] is None
    assert paused.json()["schedule"] == "0 2 * * *"  # configuration kept
    again = client.post("/api/v1/export-jobs/expjob-nightly-feed/pause", headers=admin)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_paused"
    resumed = client.post("/api/v1/export-jobs/expjob-nightly-feed/resume", headers=admin)
    assert resumed.status_code == 200
    assert resumed.json()["active"] is True
    next_run = dt.datetime.fromisoformat(resumed.json()["nextRunAt"].replace("Z", "+00:00"))
    now = dt.datetime.now(dt.UTC)
    assert now < next_run <= now + dt.timedelta(days=1)
    assert client.post("/api/v1/export-jobs/expjob-nightly-feed/resume", headers=admin).status_code == 409


def test_seed_runs_history_newest_first_with_limit(client: TestClient, admin: dict[str, str]) -> None:
    _seed_job(client, admin)
    runner = make_user("user-runner-x", "role-runner")
    # the seed's POST example, then the two older runs of the seed's list (oldest posted last)
    first = client.post(
        "/api/v1/export-jobs/expjob-nightly-feed/runs",
        json={"id": "run-20260308-020000", **SEED_RUN_POST},
        headers=runner,
    )
    assert first.status_code == 201, first.text
    for run in SEED_RUNS[2:0:-1]:
        body = {k: v for k, v in run.items() if k not in ("jobId",) and v is not None}
        assert (
            client.post("/api/v1/export-jobs/expjob-nightly-feed/runs", json=body, headers=runner).status_code
            == 201
        )
    response = client.get("/api/v1/export-jobs/expjob-nightly-feed/runs?limit=5", headers=admin)
    assert response.status_code == 200
    runs = response.json()
    assert [{k: run[k] for k in RUN_KEYS} for run in runs] == SEED_RUNS
    assert all(list(run)[: len(RUN_KEYS)] == RUN_KEYS for run in runs)
    assert all(
        run["trigger"] == "external" and run["attempt"] == 1 and run["progress"] is None for run in runs
    )
    assert runs[0]["scheduledFor"] == runs[0]["startedAt"]
    limited = client.get("/api/v1/export-jobs/expjob-nightly-feed/runs?limit=2", headers=admin).json()
    assert [run["id"] for run in limited] == ["run-20260308-020000", "run-20260307-020000"]


def test_seed_record_a_run_answers_the_run(client: TestClient, admin: dict[str, str]) -> None:
    _seed_job(client, admin)
    runner = make_user("user-runner-x", "role-runner")
    response = client.post("/api/v1/export-jobs/expjob-nightly-feed/runs", json=SEED_RUN_POST, headers=runner)
    assert response.status_code == 201
    body = response.json()
    assert body["id"].startswith("run-20260308-020000")
    assert {k: body[k] for k in SEED_RUN_POST} == SEED_RUN_POST
    assert body["jobId"] == "expjob-nightly-feed" and body["error"] is None


def test_runs_default_limit_is_50(client: TestClient, admin: dict[str, str]) -> None:
    _seed_job(client, admin)
    with session_scope() as session:
        base = dt.datetime(2026, 1, 1, 2, tzinfo=dt.UTC)
        for i in range(55):
            t = base + dt.timedelta(days=i)
            session.add(
                ExportRun(
                    id=f"run-{i:03d}",
                    job_id="expjob-nightly-feed",
                    status="success",
                    trigger="schedule",
                    attempt=1,
                    scheduled_for=t,
                    started_at=t,
                    completed_at=t,
                )
            )
    runs = client.get("/api/v1/export-jobs/expjob-nightly-feed/runs", headers=admin).json()
    assert len(runs) == 50
    assert runs[0]["id"] == "run-054" and runs[-1]["id"] == "run-005"
    assert (
        client.get("/api/v1/export-jobs/expjob-nightly-feed/runs?limit=0", headers=admin).status_code == 422
    )
    assert (
        client.get("/api/v1/export-jobs/expjob-nightly-feed/runs?limit=x", headers=admin).status_code == 422
    )
    assert client.get("/api/v1/export-jobs/expjob-nope/runs", headers=admin).status_code == 404


# -- validation: every field is checked before the job is accepted -----------------------------------------
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"schedule": "61 * * * *"}, "schedule"),
        ({"schedule": "0 2 * *"}, "schedule"),
        ({"schedule": "0 0 2 * * *"}, "schedule"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"destinationType": "ftp"}, "destinationType"),
        ({"destinationConfig": {"path": "x"}}, "destinationConfig.bucket"),
        ({"format": "pdf"}, "format"),
        ({"schemaId": "schema-nope"}, "schemaId"),
        ({"catalogId": "catalog-nope"}, "catalogId"),
        ({"dimensionScope": {"dim-nope": "seg-en"}}, "dimensionScope.dim-nope"),
        ({"dimensionScope": {"dim-language": "seg-dk"}}, "dimensionScope.dim-language"),
        ({"filenameTemplate": "../escape-{date}.csv"}, "filenameTemplate"),
        ({"filenameTemplate": "products-{nope}.csv"}, "filenameTemplate"),
        ({"id": "job-wrong-prefix"}, "id"),
    ],
)
def test_create_refuses_invalid_fields(
    client: TestClient, admin: dict[str, str], change: dict[str, Any], field: str
) -> None:
    response = client.post("/api/v1/export-jobs", json={**SEED_CREATE, **change}, headers=admin)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert field in [d.get("field") for d in error["details"]], error
    assert field.split(".")[0] in error["message"]
    assert client.get("/api/v1/export-jobs", headers=admin).json() == []


def test_bad_cron_names_schedule(client: TestClient, admin: dict[str, str]) -> None:
    response = client.post(
        "/api/v1/export-jobs", json={**SEED_CREATE, "schedule": "61 * * * *"}, headers=admin
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["message"].startswith("schedule: '61 * * * *' is not a valid cron expression: bad minute")


def test_create_reports_every_problem_at_once(client: TestClient, admin: dict[str, str]) -> None:
    response = client.post(
        "/api/v1/export-jobs",
        json={**SEED_CREATE, "schedule": "nope", "timezone": "X/Y", "schemaId": "schema-nope"},
        headers=admin,
    )
    assert response.status_code == 422
    fields = {d["field"] for d in response.json()["error"]["details"]}
    assert {"schedule", "timezone", "schemaId"} <= fields


def test_create_refuses_wrong_types_and_unknown_fields(client: TestClient, admin: dict[str, str]) -> None:
    for body in (
        {**SEED_CREATE, "compress": "maybe"},
        {**SEED_CREATE, "bogus": 1},
        {k: v for k, v in SEED_CREATE.items() if k != "schedule"},
    ):
        response = client.post("/api/v1/export-jobs", json=body, headers=admin)
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "validation_error"
    bad_json = client.post(
        "/api/v1/export-jobs", content=b"{", headers={**admin, "Content-Type": "application/json"}
    )
    assert bad_json.status_code == 400


def test_duplicate_id_is_a_conflict(client: TestClient, admin: dict[str, str]) -> None:
    _seed_job(client, admin)
    response = client.post(
        "/api/v1/export-jobs", json={"id": "expjob-nightly-feed", **SEED_CREATE}, headers=admin
    )
    assert response.status_code == 409


def test_timezone_and_schedule_description(client: TestClient, admin: dict[str, str]) -> None:
    response = client.post(
        "/api/v1/export-jobs",
        json={**SEED_CREATE, "timezone": "Europe/Copenhagen", "schedule": "*/15 9-17 * * 1-5"},
        headers=admin,
    )
    assert response.status_code == 201
    body = response.json()
    assert body["timezone"] == "Europe/Copenhagen"
    assert body["scheduleDescription"] == "Every 15 minutes, between 09:00 and 17:59, Monday through Friday"


# -- secrets are write-only -------------------------------------------------------------------------------
WEBHOOK = {"url": "https://hooks.example.com/skuport", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}


def test_secrets_are_masked_encrypted_and_kept_on_masked_put(
    client: TestClient, admin: dict[str, str]
) -> None:
    response = client.post(
        "/api/v1/export-jobs",
        json={**SEED_CREATE, "destinationType": "webhook", "destinationConfig": WEBHOOK},
        headers=admin,
    )
    assert response.status_code == 201, response.text
    job = response.json()
    assert job["destinationConfig"] == {"url": WEBHOOK["url"], "secret": "********"}
    with session_scope() as session:
        stored = session.get(ExportJob, job["id"])
        assert stored is not None
        assert WEBHOOK["secret"] not in str(stored.destination_config)
    # sending the masked value back keeps the stored secret
    put = client.put(
        f"/api/v1/export-jobs/{job['id']}",
        json={"destinationConfig": job["destinationConfig"]},
        headers=admin,
    )
    assert put.status_code == 200, put.text
    from skuport.jobs.service import decrypted_destination_config

    with session_scope() as session:
        stored = session.get(ExportJob, job["id"])
        assert stored is not None
        assert decrypted_destination_config(stored)["secret"] == WEBHOOK["secret"]
    # a new secret replaces it
    put = client.put(
        f"/api/v1/export-jobs/{job['id']}",
        json={"destinationConfig": {**WEBHOOK, "secret": "whsec_bmV3LXNlY3JldC12YWx1ZQ=="}},
        headers=admin,
    )
    assert put.status_code == 200
    with session_scope() as session:
        stored = session.get(ExportJob, job["id"])
        assert stored is not None
        assert decrypted_destination_config(stored)["secret"] == "whsec_bmV3LXNlY3JldC12YWx1ZQ=="
    # the mask cannot stand for a secret that was never stored
    response = client.post(
        "/api/v1/export-jobs",
        json={**SEED_CREATE, "destinationType": "webhook", "destinationConfig": job["destinationConfig"]},
        headers=admin,
    )
    assert response.status_code == 422


# -- roles ------------------------------------------------------------------------------------------------
def test_roles(client: TestClient, admin: dict[str, str]) -> None:
    viewer = make_user("user-viewer-x", "role-viewer")
    editor = make_user("user-editor-x", "role-editor")
    runner = make_user("user-runner-x", "role-runner")
    assert client.post("/api/v1/export-jobs", json=SEED_CREATE, headers=viewer).status_code == 403
    assert client.post("/api/v1/export-jobs", json=SEED_CREATE, headers=runner).status_code == 403
    created = client.post("/api/v1/export-jobs", json=SEED_CREATE, headers=editor)
    assert created.status_code == 201
    job_id = created.json()["id"]
    assert created.json()["createdBy"] == "user-editor-x"
    assert client.get("/api/v1/export-jobs", headers=viewer).status_code == 200
    assert client.get(f"/api/v1/export-jobs/{job_id}/runs", headers=viewer).status_code == 200
    for path in ("pause", "run", "test"):
        assert client.post(f"/api/v1/export-jobs/{job_id}/{path}", headers=viewer).status_code == 403
    assert client.delete(f"/api/v1/export-jobs/{job_id}", headers=viewer).status_code == 403
    assert (
        client.post(f"/api/v1/export-jobs/{job_id}/runs", json=SEED_RUN_POST, headers=viewer).status_code
        == 403
    )
    assert (
        client.post(f"/api/v1/export-jobs/{job_id}/runs", json=SEED_RUN_POST, headers=editor).status_code
        == 403
    )
    assert (
        client.post(f"/api/v1/export-jobs/{job_id}/runs", json=SEED_RUN_POST, headers=runner).status_code
        == 201
    )
    assert client.get("/api/v1/export-jobs").status_code == 401


# -- external runs ----------------------------------------------------------------------------------------
def test_external_run_validation(client: TestClient, admin: dict[str, str]) -> None:
    _seed_job(client, admin)
    url = "/api/v1/export-jobs/expjob-nightly-feed/runs"
    assert client.post(url, json={**SEED_RUN_POST, "status": "done"}, headers=admin).status_code == 422
    assert client.post(url, json={**SEED_RUN_POST, "recordCount": -1}, headers=admin).status_code == 422
    assert (
        client.post(
            url, json={**SEED_RUN_POST, "completedAt": "2026-03-08T01:00:00Z"}, headers=admin
        ).status_code
        == 422
    )
    assert client.post(url, json={**SEED_RUN_POST, "id": "nope"}, headers=admin).status_code == 422
    assert (
        client.post("/api/v1/export-jobs/expjob-nope/runs", json=SEED_RUN_POST, headers=admin).status_code
        == 404
    )
    naive = client.post(
        url, json={"status": "failed", "startedAt": "2026-03-08T02:00:00", "error": "boom"}, headers=admin
    )
    assert naive.status_code == 201
    assert naive.json()["startedAt"] == "2026-03-08T02:00:00.000Z"
    assert naive.json()["completedAt"] is not None  # a finished run always has its completion time
    # a running external run occupies the job: a second one conflicts (no overlap)
    running = {"status": "running", "startedAt": "2026-03-09T02:00:00Z"}
    first = client.post(url, json=running, headers=admin)
    assert first.status_code == 201
    assert first.json()["progress"] == {"done": 0, "total": None}
    assert (
        client.post(url, json={**running, "startedAt": "2026-03-09T03:00:00Z"}, headers=admin).status_code
        == 409
    )
    assert (
        client.post(url, json={**running, "completedAt": "2026-03-09T03:00:00Z"}, headers=admin).status_code
        == 422
    )


def test_runs_across_jobs_with_status_filter(client: TestClient, admin: dict[str, str]) -> None:
    _seed_job(client, admin)
    other = client.post("/api/v1/export-jobs", json={**SEED_CREATE, "name": "Other"}, headers=admin).json()
    for job_id, status, day in (
        ("expjob-nightly-feed", "success", 1),
        (other["id"], "failed", 2),
        ("expjob-nightly-feed", "failed", 3),
    ):
        body = {"status": status, "startedAt": f"2026-03-0{day}T02:00:00Z"}
        assert client.post(f"/api/v1/export-jobs/{job_id}/runs", json=body, headers=admin).status_code == 201
    runs = client.get("/api/v1/runs", headers=admin).json()
    assert [r["startedAt"][:10] for r in runs] == ["2026-03-03", "2026-03-02", "2026-03-01"]
    failed = client.get("/api/v1/runs?status=failed", headers=admin).json()
    assert {r["jobId"] for r in failed} == {"expjob-nightly-feed", other["id"]}
    assert all(r["status"] == "failed" for r in failed)
    assert len(client.get("/api/v1/runs?limit=1", headers=admin).json()) == 1
    mine = client.get("/api/v1/runs?jobId=expjob-nightly-feed&status=success,failed", headers=admin).json()
    assert len(mine) == 2
    assert client.get("/api/v1/runs?status=weird", headers=admin).status_code == 422


def test_list_filters(client: TestClient, admin: dict[str, str]) -> None:
    _seed_job(client, admin)
    client.post(
        "/api/v1/export-jobs",
        json={
            **SEED_CREATE,
            "name": "Local",
            "destinationType": "local",
            "destinationConfig": {"path": "feeds"},
            "active": False,
        },
        headers=admin,
    )
    active = client.get("/api/v1/export-jobs?filter[active]=true", headers=admin).json()
    assert [j["id"] for j in active] == ["expjob-nightly-feed"]
    local = client.get("/api/v1/export-jobs?filter[destinationType]=local", headers=admin).json()
    assert [j["name"] for j in local] == ["Local"]
    assert local[0]["nextRunAt"] is None
    assert client.get("/api/v1/export-jobs?filter[nope]=1", headers=admin).status_code == 422


def test_run_now_and_overlap(
    memory_executor: InMemoryExecutor, client: TestClient, admin: dict[str, str]
) -> None:
    submitted = memory_executor.queued
    _seed_job(client, admin)
    response = client.post("/api/v1/export-jobs/expjob-nightly-feed/run", headers=admin)
    assert response.status_code == 202, response.text
    run = response.json()
    assert run["status"] == "running" and run["trigger"] == "manual" and run["attempt"] == 1
    assert run["scheduledFor"] == run["startedAt"]
    assert submitted == [("export-run", run["id"])]  # queued in the transaction that wrote the run
    again = client.post("/api/v1/export-jobs/expjob-nightly-feed/run", headers=admin)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_running"
    assert submitted == [("export-run", run["id"])]  # the refused one's transaction queued nothing
    got = client.get(f"/api/v1/export-jobs/expjob-nightly-feed/runs/{run['id']}", headers=admin)
    assert got.status_code == 200 and got.json()["id"] == run["id"]
    assert (
        client.get("/api/v1/export-jobs/expjob-nightly-feed/runs/run-nope", headers=admin).status_code == 404
    )
    assert client.post("/api/v1/export-jobs/expjob-nope/run", headers=admin).status_code == 404


def test_destination_test_reports_failure_without_secrets(client: TestClient, admin: dict[str, str]) -> None:
    # a webhook on a port nothing listens on, with a secret that must not leak into the answer
    created = client.post(
        "/api/v1/export-jobs",
        json={
            **SEED_CREATE,
            "destinationType": "webhook",
            "destinationConfig": {"url": "http://127.0.0.1:9/hook", "secret": WEBHOOK["secret"]},
        },
        headers=admin,
    ).json()
    response = client.post(f"/api/v1/export-jobs/{created['id']}/test", headers=admin)
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is False and body["destinationType"] == "webhook"
    assert body["error"] and WEBHOOK["secret"] not in body["error"]


def test_destination_test_local_ok(
    client: TestClient, admin: dict[str, str], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from skuport.config import get_settings

    monkeypatch.setenv("SKUPORT_LOCAL_ROOT", str(tmp_path))
    get_settings.cache_clear()
    try:
        created = client.post(
            "/api/v1/export-jobs",
            json={**SEED_CREATE, "destinationType": "local", "destinationConfig": {"path": "feeds"}},
            headers=admin,
        )
        job = created.json()
        response = client.post(f"/api/v1/export-jobs/{job['id']}/test", headers=admin)
        assert response.status_code == 200
        body = response.json()
        assert body == {**body, "ok": True, "error": None, "destinationType": "local"}
        assert body["destinationPath"].startswith(f"file://{tmp_path}/feeds/products-")
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_filters_and_fields_use_the_one_filter_syntax(client: TestClient, admin: dict[str, str]) -> None:
    ok = client.post(
        "/api/v1/export-jobs",
        json={
            **SEED_CREATE,
            "filters": {"price": {"gte": 100}, "sku_eq": "CW-001"},
            "fields": ["sku", "price"],
        },
        headers=admin,
    )
    assert ok.status_code == 201, ok.text
    assert ok.json()["filters"] == {"price": {"gte": 100}, "sku_eq": "CW-001"}
    assert ok.json()["fields"] == ["sku", "price"]
    for bad in ({"filters": {"no-such-attribute": 1}}, {"fields": ["sku", "no-such-column"]}):
        response = client.post("/api/v1/export-jobs", json={**SEED_CREATE, **bad}, headers=admin)
        assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    ("config", "template", "field"),
    [
        ({"path": "/".join(["d"] * 2000)}, None, "destinationConfig.path"),
        ({"path": "p" * 5000}, None, "destinationConfig.path"),
        ({"path": "x" * 300}, None, "destinationConfig.path"),
        ({"path": "feeds"}, "f" * 300 + ".csv", "filenameTemplate"),
        ({"path": "feeds"}, "{jobId}-{runId}-" + "n" * 100 + ".csv", "filenameTemplate"),
    ],
)
def test_unbounded_local_paths_are_refused_naming_the_field(
    client: TestClient, admin: dict[str, str], config: dict[str, str], template: str | None, field: str
) -> None:
    body = {**SEED_CREATE, "destinationType": "local", "destinationConfig": config}
    if template is not None:
        body["filenameTemplate"] = template
    response = client.post("/api/v1/export-jobs", json=body, headers=admin)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert field in {d.get("field") for d in error["details"]}, error
    assert len(response.text) < 5000  # the refusal does not echo a huge path back


def test_credentials_in_a_webhook_url_are_secret(
    client: TestClient, admin: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    import json

    from skuport.secrets import install_log_redaction

    url = "https://feed-user:Pa55-w0rd-x@hooks.example.com/hook?token=tok-123456789&v=2"
    body = {
        **SEED_CREATE,
        "destinationType": "webhook",
        "destinationConfig": {"url": url, "headers": {"X-Api-Key": "key-abcdefgh"}},
    }
    created = client.post("/api/v1/export-jobs", json=body, headers=admin)
    assert created.status_code == 201, created.text
    shown = created.json()["destinationConfig"]
    assert shown["url"] == "https://********@hooks.example.com/hook?token=********&v=********"
    assert shown["headers"] == {"X-Api-Key": "********"}
    job_id = created.json()["id"]
    listed = client.get("/api/v1/export-jobs", headers=admin).text
    assert "Pa55-w0rd-x" not in listed and "tok-123456789" not in listed
    with session_scope() as session:  # encrypted at rest
        stored = session.get(ExportJob, job_id)
        assert stored is not None and "Pa55-w0rd-x" not in json.dumps(stored.destination_config)
    # sent back as shown (a PUT of what GET returned), the credentials stay
    put = client.put(
        f"/api/v1/export-jobs/{job_id}", headers=admin, json={**body, "destinationConfig": shown}
    )
    assert put.status_code == 200, put.text
    from skuport.jobs.service import decrypted_destination_config

    with session_scope() as session:
        job = session.get(ExportJob, job_id)
        assert job is not None and decrypted_destination_config(job)["url"] == url
    # and never in a log line
    install_log_redaction(caplog.handler)
    import logging

    logging.getLogger("skuport.test").warning("posting to %s", url)
    assert "Pa55-w0rd-x" not in caplog.text and "tok-123456789" not in caplog.text
