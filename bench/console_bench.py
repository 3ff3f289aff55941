"""Console page render times on a large catalogue, beside the API's JSON answers for the same data.

A fresh data folder gets the demo world, N synthetic records and one job with R runs; then a real
`skuport serve` answers each page K times over HTTP on loopback (a logged-in console session; the
baseline is the API call that reads the same data: a page of records, a page of runs).

    .venv/bin/python bench/console_bench.py --records 100000 --runs 1000 --repeat 40
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
SKUPORT = [sys.executable, "-m", "skuport.cli"]
PASSWORD = "bench-console-password"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _fill(records: int, runs: int) -> str:
    """The demo world, ``records`` synthetic records, a job with ``runs`` runs; returns the job id."""
    from skuport.bootstrap import bootstrap
    from skuport.db import session_scope
    from skuport.demo import load_seed_world
    from skuport.demo_synthetic import generate
    from skuport.jobs.models import ExportJob, ExportRun

    bootstrap()
    with session_scope() as session:
        load_seed_world(session)
    generate(count=records, seed=7)
    now = dt.datetime.now(dt.UTC)
    with session_scope() as session:
        job = ExportJob(
            id="expjob-bench",
            name="Bench feed",
            destination_type="local",
            destination_config={"path": "bench"},
            format="csv",
            schedule="0 * * * *",
            timezone="UTC",
            include_variants=True,
            compress=False,
            filename_template="{jobId}-{datetime}.csv",
            active=True,
            delta=False,
            created_at=now,
            updated_at=now,
            next_run_at=now + dt.timedelta(hours=1),
        )
        session.add(job)
        session.flush()
        for n in range(runs):
            start = now - dt.timedelta(hours=runs - n)
            failed = n % 17 == 0
            session.add(
                ExportRun(
                    id=f"run-bench-{n:05d}",
                    job_id=job.id,
                    status="failed" if failed else "success",
                    trigger="schedule",
                    attempt=1,
                    scheduled_for=start,
                    started_at=start,
                    completed_at=start + dt.timedelta(seconds=40 + n % 9),
                    record_count=None if failed else records - n,
                    file_size=None if failed else 9_000_000 + n,
                    destination_path=None if failed else f"file:///tmp/bench/expjob-bench-{n}.csv",
                    error="S3 refused the upload: AccessDenied" if failed else None,
                )
            )
    return "expjob-bench"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    """Fill, serve, measure, print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000, help="synthetic records (default 100000)")
    parser.add_argument("--runs", type=int, default=1000, help="runs of the measured job (default 1000)")
    parser.add_argument("--repeat", type=int, default=40, help="requests per page (default 40)")
    parser.add_argument("--database-url", help="a PostgreSQL URL (default: SQLite in a temporary folder)")
    args = parser.parse_args()

    data = Path(tempfile.mkdtemp(prefix="skuport-console-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKUPORT_")}
    env.update(SKUPORT_DATA_DIR=str(data), SKUPORT_LOG_LEVEL="warning", SKUPORT_SCHEDULER="false")
    if args.database_url:
        env["SKUPORT_DATABASE_URL"] = args.database_url
    os.environ.update(env)
    began = time.perf_counter()
    job_id = _fill(args.records, args.runs)
    print(
        f"filled {args.records:,} records and {args.runs:,} runs in {time.perf_counter() - began:.0f} s",
        file=sys.stderr,
    )
    subprocess.run(
        [*SKUPORT, "user", "password", "user-admin"],
        input=PASSWORD + "\n",
        text=True,
        env=env,
        check=True,
        capture_output=True,
    )
    token = subprocess.run(
        [*SKUPORT, "token", "create", "--user", "user-admin"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    port = _free_port()
    server = subprocess.Popen([*SKUPORT, "serve", "--port", str(port), "--no-scheduler"], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        client = httpx.Client(base_url=url, timeout=60)
        for _ in range(300):
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        login = client.get("/console/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', login.text).group(1)  # type: ignore[union-attr]
        answer = client.post(
            "/console/login",
            data={"username": "user-admin", "password": PASSWORD, "csrf": csrf, "next": "/console"},
        )
        assert answer.status_code == 303, answer.status_code  # logged in, sent on to the home page
        api = {"Authorization": f"Bearer {token}"}
        pages = [
            ("console: records list, page 1", "/console/records", None),
            ("console: records list, Danish scope", "/console/records?scope=dim-language:seg-da", None),
            (
                "console: records list, page 1,000",
                f"/console/records?offset={min(49_950, args.records - 50)}",
                None,
            ),
            ("console: records search 'jacket'", "/console/records?q=jacket", None),
            (f"console: job page ({args.runs:,} runs)", f"/console/jobs/{job_id}", None),
            ("console: home (feeds by health, 14 days)", "/console", None),
            ("console: runs across jobs", "/console/runs", None),
            ("baseline API: GET /records?limit=50", "/api/v1/records?limit=50", api),
            ("baseline API: GET /export-jobs/:id/runs", f"/api/v1/export-jobs/{job_id}/runs?limit=50", api),
        ]
        results = []
        for name, path, headers in pages:
            client.get(path, headers=headers)  # warm
            times = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                response = client.get(path, headers=headers)
                times.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 200, (path, response.status_code)
            results.append((name, _percentile(times, 0.5), _percentile(times, 0.95), len(response.content)))
        print(
            f"\n{args.records:,} records, {args.runs:,} runs, {args.repeat} requests per page, "
            f"{'PostgreSQL' if args.database_url else 'SQLite'}\n"
        )
        print("| page | p50 ms | p95 ms | bytes |\n|---|---:|---:|---:|")
        for name, p50, p95, size in results:
            print(f"| {name} | {p50:.1f} | {p95:.1f} | {size:,} |")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
