"""Service pieces below the API: failure messages, the background sweeper, the spec it builds."""

from __future__ import annotations

import datetime as dt
import errno
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.exc import OperationalError

from skuport.db import session_scope
from skuport.errors import ValidationFailed
from skuport.exports import service
from skuport.exports.models import Export
from skuport.exports.storage import StorageError
from tests.exports.helpers import add_records, create, drain, gated_pipeline, product, run, wait


def test_failures_are_described_with_what_to_do() -> None:
    assert service.describe_failure(RuntimeError("query timeout")) == {
        "RuntimeError": "query timeout (create the export again; report it if it persists)."}
    timeout = service.describe_failure(OperationalError("SELECT", {}, Exception("canceling statement")))
    assert "query timeout" in timeout["OperationalError"] and "narrow it" in timeout["OperationalError"]
    full = service.describe_failure(OSError(errno.ENOSPC, "No space left on device"))
    assert "free disk space" in full["OSError"]
    storage = service.describe_failure(StorageError("could not upload"))
    assert "SKUPORT_EXPORT_STORAGE" in storage["StorageError"]
    rows = service.describe_failure(ValidationFailed("Invalid export: 2,000,000 rows do not fit"))
    assert rows == {"ValidationFailed": "Invalid export: 2,000,000 rows do not fit"}
    assert len(service.describe_failure(RuntimeError("x" * 5000))["RuntimeError"]) == 1000


def test_build_spec_passes_every_option_to_the_pipeline() -> None:
    export = Export(id="exp-a", user_id="u", format="xml", schema_id="schema-apparel",
                    catalog_id="catalog-webshop", include_variants=False, lifecycle_state_ids=["state-draft"],
                    filters={"sku_eq": "A"}, fields=["sku"], includes=["categories", "lifecycleState"],
                    dimension_scope={"dim-language": "seg-da"}, header_language="seg-da", compress=True,
                    dry_data=True)
    spec = service.build_spec(export)
    assert (spec.format, spec.schema_id, spec.catalog_id, spec.include_variants) == (
        "xml", "schema-apparel", "catalog-webshop", False)
    assert spec.lifecycle_state_ids == ("state-draft",) and spec.fields == ("sku",)
    assert spec.filters == {"sku_eq": "A"} and spec.dimension_scope == {"dim-language": "seg-da"}
    assert spec.includes == ("categories",)  # lifecycleState is always a column
    assert spec.header_language == "seg-da" and spec.compress and spec.dry_data


def test_the_background_sweeper_removes_expired_files(client: TestClient, admin: dict[str, str]) -> None:
    add_records(product("SW-001", "Sweep me"))
    done = run(client, admin, format="csv")
    with session_scope() as session:
        session.execute(update(Export).where(Export.id == done["id"]).values(
            expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    sweeper = service.Sweeper(0.05)
    sweeper.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with session_scope() as session:
                export = session.get(Export, done["id"])
                assert export is not None
                if export.file_expired:
                    break
            time.sleep(0.05)
    finally:
        sweeper.stop()
    assert export.file_expired
    assert client.get(f"/api/v1/exports/{done['id']}/download", headers=admin).status_code == 410


def test_server_shutdown_fails_running_exports(client: TestClient, admin: dict[str, str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    add_records(product("SD-001", "Shut down"))
    with gated_pipeline(monkeypatch) as (reached, release):
        created = create(client, admin, format="csv")
        assert reached.wait(10)
        assert service.stop_running() == 1
        release.set()
        drain()
    body = client.get(f"/api/v1/exports/{created['id']}", headers=admin).json()
    assert body["status"] == "failed" and "ServerShutdown" in body["errorsLog"]
    assert body["downloadUrl"] is None


def test_exports_left_pending_by_a_stopped_server_run_at_the_next_start(
        database_url: str, admin: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from skuport.app import create_app

    add_records(product("RQ-001", "Requeued"))
    with monkeypatch.context() as m:  # the first server stops before its executor ran the export
        m.setattr(service, "_submit", lambda export_id: None)
        with TestClient(create_app(), raise_server_exceptions=False) as first:
            created = create(first, admin, format="csv")
            assert first.get(f"/api/v1/exports/{created['id']}", headers=admin).json()["status"] == "pending"
    with TestClient(create_app(), raise_server_exceptions=False) as second:
        done = wait(second, admin, created["id"])
        assert done["status"] == "completed" and done["recordCount"] == 1
        again = TestClient(create_app(), raise_server_exceptions=False)
        with again:  # a third start finds nothing pending: the export does not run twice
            assert service.requeue_pending() == 0
