"""Server memory during one-off exports of 20,000 and 100,000 records, through the HTTP API.

Starts ``skuport serve`` (embedded mode: SQLite, in-process executor) on a fresh data dir, fills it
with synthetic records, then for each format: POST /api/v1/exports, poll until completed, download
the file through its signed URL, and sample the server's resident memory (``/proc/PID/status``
VmRSS, summed over the server and its child processes) every 20 ms. Prints a Markdown table.

    .venv/bin/python bench/one_off_export_memory.py [--records 100000] [--formats csv,jsonl,xlsx]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx


def _status_kib(pid: int, field: str = "VmRSS") -> int:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    for line in lines:
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _tree(pid: int) -> list[int]:
    """The process and all its descendants (the pipeline may render in worker processes)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def _rss_kib(pid: int) -> int:
    """Resident memory of the server process and its children, in KiB."""
    return sum(_status_kib(p) for p in _tree(pid))


class Sampler:
    """Peak RSS of a process while a block runs."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self.main_peak, self._stop = pid, 0, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_kib(self.pid))
            self.main_peak = max(self.main_peak, _status_kib(self.pid))
            time.sleep(0.02)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _fill(count: int) -> None:
    from skuport.demo_synthetic import generate

    generate(count=count, seed=len(str(count)) + count)


@dataclass
class Measure:
    """One export's figures (memory in KiB)."""

    format: str
    records: int
    size: int
    export_s: float
    total_s: float
    before: int
    peak: int
    after: int
    main_before: int
    main_peak: int
    main_after: int


def export_once(client: httpx.Client, headers: dict[str, str], pid: int, fmt: str) -> Measure:
    """One export through the API, from POST to the downloaded file; memory sampled throughout."""
    before, main_before = _rss_kib(pid), _status_kib(pid)
    began = time.perf_counter()
    with Sampler(pid) as sampler:
        created = client.post("/api/v1/exports", json={"format": fmt}, headers=headers)
        created.raise_for_status()
        export_id = created.json()["id"]
        while True:
            body = client.get(f"/api/v1/exports/{export_id}", headers=headers).json()
            if body["status"] not in ("pending", "in_progress"):
                break
            time.sleep(0.1)
        if body["status"] != "completed":
            raise RuntimeError(f"export ended {body['status']}: {body['errorsLog']}")
        exported = time.perf_counter() - began
        digest, size = hashlib.sha256(), 0
        with client.stream("GET", body["downloadUrl"]) as response:  # signed URL, no token
            response.raise_for_status()
            for chunk in response.iter_bytes(1 << 20):
                digest.update(chunk)
                size += len(chunk)
        assert size == body["fileSize"] and digest.hexdigest() == body["sha256"], "download differs"
    return Measure(
        format=fmt,
        records=body["recordCount"],
        size=size,
        export_s=exported,
        total_s=time.perf_counter() - began,
        before=before,
        peak=sampler.peak,
        after=_rss_kib(pid),
        main_before=main_before,
        main_peak=sampler.main_peak,
        main_after=_status_kib(pid),
    )


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=20_000)
    parser.add_argument("--formats", default="csv,jsonl,xlsx")
    args = parser.parse_args()
    formats = args.formats.split(",")

    data_dir = Path(tempfile.mkdtemp(prefix="skuport-bench-exports-"))
    os.environ.update(
        {
            "SKUPORT_DATA_DIR": str(data_dir),
            "SKUPORT_SECRET_KEY": "bench-secret",
            "SKUPORT_EXPORT_MAX_RECORDS": "0",
            "SKUPORT_LOG_LEVEL": "warning",
        }
    )
    os.environ.pop("SKUPORT_DATABASE_URL", None)
    from skuport.bootstrap import bootstrap
    from skuport.config import get_settings
    from skuport.db import session_scope
    from skuport.demo import load_seed_world

    bootstrap()
    with session_scope() as session:
        load_seed_world(session)
    _fill(args.small)

    port = _free_port()
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "skuport"),
            "serve",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-scheduler",
        ],
        env=os.environ.copy(),
    )
    rows: list[Measure] = []
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
        for _ in range(200):
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        from skuport.auth.tokens import create_token

        token = create_token(get_settings(), user_id="user-admin", ttl=dt.timedelta(hours=1))
        headers = {"Authorization": f"Bearer {token}"}
        client.get("/api/v1/exports", headers=headers).raise_for_status()  # warm up
        idle = _rss_kib(server.pid)
        for fmt in formats:
            rows.append(export_once(client, headers, server.pid, fmt))
        _fill(args.records - args.small)
        for fmt in formats:
            rows.append(export_once(client, headers, server.pid, fmt))
        hwm = _status_kib(server.pid, "VmHWM")
    finally:
        server.terminate()
        server.wait(30)

    print(
        f"server RSS idle after start: {idle / 1024:.0f} MiB; high-water mark of the server process "
        f"over the whole run: {hwm / 1024:.0f} MiB (RSS figures below include its child processes)\n"
    )
    print(
        "| format | records | file | export (s) | export + download (s) | server process RSS before / "
        "peak / after | with worker processes: before / peak / after |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for m in rows:
        print(
            f"| {m.format} | {m.records:,} | {m.size / 1e6:.1f} MB | {m.export_s:.1f} | {m.total_s:.1f} | "
            f"{m.main_before / 1024:.0f} / {m.main_peak / 1024:.0f} / {m.main_after / 1024:.0f} MiB | "
            f"{m.before / 1024:.0f} / {m.peak / 1024:.0f} / {m.after / 1024:.0f} MiB |"
        )


if __name__ == "__main__":
    main()
