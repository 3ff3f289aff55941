"""`skuport serve` runs the embedded scheduler: a due job is run by the server process itself."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from tests.live import live_server


def test_serve_runs_due_jobs_and_run_now(tmp_path: Path) -> None:
    root = tmp_path / "local-root"
    env = {"SKUPORT_SCHEDULER_INTERVAL": "0.5", "SKUPORT_LOCAL_ROOT": str(root)}
    with live_server(None, env) as server:
        job = httpx.post(
            f"{server.url}/api/v1/export-jobs",
            headers=server.headers,
            json={
                "name": "Yearly, made due below",
                "destinationType": "local",
                "destinationConfig": {"path": "live"},
                "format": "jsonl",
                "schemaId": "schema-apparel",
                # no tick of its own can fall inside the test (and clash with "run now")
                "schedule": "0 0 1 1 *",
                "filenameTemplate": "{jobId}-{datetime}.jsonl",
            },
        ).json()
        # make the job due now (as after a short downtime) instead of waiting for the next minute
        db = create_engine(f"sqlite:///{Path(server.env['SKUPORT_DATA_DIR']) / 'skuport.db'}")
        past = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)).replace(tzinfo=None)
        with db.begin() as conn:
            conn.execute(
                text("UPDATE export_jobs SET next_run_at = :t WHERE id = :id"), {"t": past, "id": job["id"]}
            )
        runs: list[dict[str, Any]] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            runs = httpx.get(
                f"{server.url}/api/v1/export-jobs/{job['id']}/runs", headers=server.headers
            ).json()
            if runs and runs[0]["status"] != "running":
                break
            time.sleep(0.2)
        assert runs and runs[0]["status"] == "success", runs
        assert runs[0]["trigger"] == "schedule" and runs[0]["recordCount"] > 0
        delivered = Path(str(runs[0]["destinationPath"]).removeprefix("file://"))
        assert delivered.is_file() and delivered.stat().st_size == runs[0]["fileSize"]
        assert delivered.parent == root / "live"
        # "run now" goes through the same executor
        started = httpx.post(f"{server.url}/api/v1/export-jobs/{job['id']}/run", headers=server.headers)
        assert started.status_code == 202
        run_id = started.json()["id"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            run = httpx.get(
                f"{server.url}/api/v1/export-jobs/{job['id']}/runs/{run_id}", headers=server.headers
            ).json()
            if run["status"] != "running":
                break
            time.sleep(0.2)
        assert run["status"] == "success" and run["trigger"] == "manual"
    with db.connect() as conn:  # after shutdown nothing is left running
        assert conn.execute(text("SELECT count(*) FROM export_runs WHERE status = 'running'")).scalar() == 0
    db.dispose()
