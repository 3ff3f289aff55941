"""``/metrics`` computes the fleet's figures from the database; ``/readyz`` says whether to send traffic."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from skuport.scheduling.executor import InMemoryExecutor


def scrape(client: TestClient, admin: dict[str, str]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", headers=admin)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_metrics_count_runs_queue_and_deliveries(
    memory_executor: InMemoryExecutor,
    client: TestClient,
    admin: dict[str, str],
    tmp_path: Any,
    monkeypatch: Any,
) -> None:
    from skuport.config import get_settings

    monkeypatch.setenv("SKUPORT_LOCAL_ROOT", str(tmp_path))
    get_settings.cache_clear()
    created = client.post(
        "/api/v1/export-jobs",
        headers=admin,
        json={
            "name": "m",
            "destinationType": "local",
            "destinationConfig": {"path": "m"},
            "format": "csv",
            "schedule": "0 0 1 1 *",
        },
    ).json()
    run = client.post(f"/api/v1/export-jobs/{created['id']}/run", headers=admin).json()
    queued = scrape(client, admin)
    assert queued[("skuport_queue_depth", (("kind", "run"),))] == 1
    assert queued[("skuport_runs", (("status", "running"), ("trigger", "manual")))] == 1
    assert memory_executor.run_all() == [run["id"]]
    done = scrape(client, admin)
    assert done[("skuport_queue_depth", (("kind", "run"),))] == 0
    assert done[("skuport_runs", (("status", "success"), ("trigger", "manual")))] == 1
    assert done[("skuport_deliveries", (("destination", "local"), ("outcome", "success")))] == 1
    assert done[("skuport_run_duration_seconds_count", ())] == 1
    assert done[("skuport_run_duration_seconds_bucket", (("le", "+Inf"),))] == 1
    assert done[("skuport_runs_stalled", ())] == 0 and done[("skuport_scheduler_lag_seconds", ())] == 0


def test_metrics_need_a_token(client: TestClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"


def test_readyz_reports_the_migration(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200 and response.json()["status"] == "ready"
    from alembic.script import ScriptDirectory

    from skuport.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None and head >= "0008"
    assert response.json()["migration"] == head
