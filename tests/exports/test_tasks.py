"""The one-off export task under the work lifecycle: failure messages, expiry, reaping, shutdown, requeue."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.exc import OperationalError

from skuport.config import get_settings
from skuport.db import session_scope
from skuport.errors import ValidationFailed
from skuport.exports import tasks
from skuport.exports.models import Export
from skuport.exports.storage import StorageError
from skuport.scheduling import lifecycle
from skuport.scheduling.executor import enqueue, get_executor
from skuport.scheduling.lifecycle import LIFECYCLE
from tests.exports.helpers import add_records, create, drain, gated_pipeline, product, run, wait


def test_failures_are_described_with_what_to_do() -> None:
    failure = tasks.describe_failure(RuntimeError("query timeout"))
    assert (failure.code, failure.message) == (
        "RuntimeError",
        "query timeout (create the export again; report it if it persists).",
    )
    timeout = tasks.describe_failure(OperationalError("SELECT", {}, Exception("canceling statement")))
    assert "query timeout" in timeout.message and "narrow it" in timeout.message
    storage = tasks.describe_failure(StorageError("could not upload"))
    assert "SKUPORT_EXPORT_STORAGE" in storage.message
    rows = tasks.describe_failure(ValidationFailed("Invalid export: 2,000,000 rows do not fit"))
    assert (rows.code, rows.message) == ("ValidationFailed", "Invalid export: 2,000,000 rows do not fit")
    assert len(tasks.describe_failure(RuntimeError("x" * 5000)).message) == 1000
    assert not failure.retry


def _age(export_id: str, **values: object) -> None:
    with session_scope() as session:
        session.execute(update(Export).where(Export.id == export_id).values(**values))


def _get(export_id: str) -> Export:
    with session_scope() as session:
        export = session.get(Export, export_id)
        assert export is not None
        return export


def test_expiry_removes_files_past_their_time(client: TestClient, admin: dict[str, str]) -> None:
    add_records(product("SW-001", "Sweep me"))
    old, fresh = run(client, admin, format="csv"), run(client, admin, format="json")
    _age(old["id"], expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    assert tasks.expire_files() == 1
    assert tasks.expire_files() == 0
    assert _get(old["id"]).file_expired and not _get(fresh["id"]).file_expired
    assert client.get(f"/api/v1/exports/{old['id']}/download", headers=admin).status_code == 410
    assert client.get(f"/api/v1/exports/{fresh['id']}/download", headers=admin).status_code == 200


def test_a_lost_worker_s_export_is_queued_again_then_failed_when_attempts_run_out(
    client: TestClient, admin: dict[str, str]
) -> None:
    add_records(product("LW-001", "Lost"))
    done = run(client, admin, format="csv")
    stale = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    # given an export whose worker stopped heartbeating on its first attempt
    _age(done["id"], status="in_progress", worker="gone-host:1:abc", heartbeat_at=stale, completed_at=None)
    # then the reaper queues it again, and it runs to completion as attempt 2
    assert lifecycle.reap(tasks.EXPORTS) == [done["id"]]
    again = wait(client, admin, done["id"])
    assert again["status"] == "completed" and _get(done["id"]).attempt == 2
    # given the same on the last attempt: failed, saying so
    last = get_settings().run_max_attempts
    _age(done["id"], status="in_progress", worker="gone-host:1:abc", heartbeat_at=stale, attempt=last)
    assert lifecycle.reap(tasks.EXPORTS) == [done["id"]]
    body = client.get(f"/api/v1/exports/{done['id']}", headers=admin).json()
    assert body["status"] == "failed" and "worker lost" in body["errorsLog"]["WorkerLost"]
    assert f"attempt {last} of {last} was the last" in body["errorsLog"]["WorkerLost"]


def test_shutdown_cancels_a_running_export_which_the_next_start_runs_again(
    client: TestClient, admin: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    add_records(product("SD-001", "Shut down"))
    with gated_pipeline(monkeypatch) as (reached, release):
        created = create(client, admin, format="csv")
        assert reached.wait(10)
        try:
            assert LIFECYCLE.drain(grace=0, stop_wait=0.2) == [created["id"]]
            release.set()
            drain()
        finally:
            LIFECYCLE.reset()
    export = _get(created["id"])
    # the cancelled attempt stored nothing: the export is queued for its next attempt
    assert (export.status, export.attempt, export.worker, export.storage_key) == ("pending", 2, None, None)
    assert lifecycle.requeue(tasks.EXPORTS, enqueue) == [created["id"]]  # what the next start does
    done = wait(client, admin, created["id"])
    assert done["status"] == "completed" and done["recordCount"] == 1


def test_exports_left_pending_by_a_stopped_server_run_at_the_next_start(
    database_url: str, admin: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from skuport.app import create_app

    add_records(product("RQ-001", "Requeued"))
    with monkeypatch.context() as m:  # the first server's queue lives in memory and is lost with it
        m.setenv("SKUPORT_EXECUTOR", "memory")
        get_settings.cache_clear()
        get_executor.cache_clear()
        with TestClient(create_app(), raise_server_exceptions=False) as first:
            created = create(first, admin, format="csv")
            assert first.get(f"/api/v1/exports/{created['id']}", headers=admin).json()["status"] == "pending"
    get_settings.cache_clear()
    get_executor.cache_clear()
    with TestClient(create_app(), raise_server_exceptions=False) as second:
        done = wait(second, admin, created["id"])
        assert done["status"] == "completed" and done["recordCount"] == 1
        # a third start finds nothing queued: the export does not run twice
        assert lifecycle.requeue(tasks.EXPORTS, enqueue) == []
    started = _get(created["id"]).started_at
    time.sleep(0.05)
    assert _get(created["id"]).started_at == started
