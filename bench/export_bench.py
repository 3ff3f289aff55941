"""Export pipeline benchmark: records/s end to end, CPU time and peak resident memory per format.

Each export runs in a fresh subprocess (so peak RSS is that export's alone, worker processes included)
against a database filled once with ``skuport demo --records N`` (see bench/README.md):

    .venv/bin/python bench/export_bench.py --data-dir bench/out/sqlite-1m
    .venv/bin/python bench/export_bench.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/skuport_bench_1m
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SCOPE = {"dim-language": "seg-en", "dim-market": "seg-dk"}
DANISH = {"dim-language": "seg-da", "dim-market": "seg-dk"}
"""The demo's colours have Danish and German labels, not English ones."""
SCENARIOS = {
    "csv+gzip": {"format": "csv", "compress": True},
    "csv+gzip;dialect": {
        "format": "csv",
        "compress": True,
        "csv": {"delimiter": ";", "decimalSeparator": ","},
    },
    "csv+gzip;dialect;6 columns": {
        "format": "csv",
        "compress": True,
        "csv": {"delimiter": ";", "decimalSeparator": ","},
        "columns": [
            {"header": "ID", "field": "id"},
            {"header": "SKU", "attribute": "sku"},
            {"header": "title_da", "attribute": "product-name", "scope": {"dim-language": "seg-da"}},
            {"header": "title_en", "attribute": "product-name"},
            {"header": "price_de", "attribute": "price", "scope": {"dim-market": "seg-de"}, "default": 0},
            {"header": "channel", "value": "webshop"},
        ],
    },
    "csv+gzip;Danish": {"format": "csv", "compress": True, "scope": DANISH},
    "csv+gzip;Danish;valueLabels": {"format": "csv", "compress": True, "scope": DANISH, "value_labels": True},
    "jsonl": {"format": "jsonl", "compress": False},
    "xml": {"format": "xml", "compress": False},
    "xlsx": {"format": "xlsx", "compress": False},
}


def child(args: argparse.Namespace) -> None:
    """Run one export and print its measurements as JSON."""
    os.environ["SKUPORT_DATABASE_URL"] = args.url
    os.environ["SKUPORT_EXPORT_WORKERS"] = str(args.workers)
    os.environ["SKUPORT_EXPORT_ENGINE"] = args.engine
    from skuport.exporting import parallel
    from skuport.exporting.formats.csv import CsvDialect
    from skuport.exporting.pipeline import run_export
    from skuport.exporting.selection import ColumnSpec
    from skuport.exporting.spec import ExportSpec

    scenario = SCENARIOS[args.scenario]
    spec = ExportSpec(
        format=scenario["format"],
        compress=scenario["compress"],
        schema_id="schema-apparel",
        dimension_scope=scenario.get("scope", SCOPE),
        csv=CsvDialect.model_validate(scenario["csv"]) if "csv" in scenario else None,
        columns=tuple(ColumnSpec.model_validate(c) for c in scenario["columns"])
        if "columns" in scenario
        else None,
        value_labels=scenario.get("value_labels", False),
    )
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_SELF)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        result = run_export(spec, out_dir=Path(out))
        wall = time.perf_counter() - began
        worker_cpu, worker_rss = _workers(parallel)
        parallel.shutdown()
        size = result.file_size
    me = resource.getrusage(resource.RUSAGE_SELF)
    cpu = me.ru_utime - before.ru_utime + me.ru_stime - before.ru_stime + worker_cpu
    print(
        json.dumps(
            {
                "records": result.record_count,
                "bytes": size,
                "wall": wall,
                "cpu": cpu,
                "rss_mb": me.ru_maxrss / 1024,
                "worker_rss_mb": worker_rss,
                "load": load,
            }
        )
    )


def reference(args: argparse.Namespace) -> None:
    """The floor and the baseline of the csv+gzip scenario, printed as JSON (a child process).

    floor: one scan of the stored values the export reads (the records' positional cells text, not split;
    ``cells_json`` before 2026-12-07) plus ISA-L
    level 3 over the finished (uncompressed) csv; nothing can be faster than reading its input and
    compressing its output. baseline: the streaming script a user would write instead: read each
    record's seed-form values, resolve the scope, ``csv.writer`` into ``gzip``.
    """
    import csv
    import gzip

    from isal import igzip
    from sqlalchemy import text

    os.environ["SKUPORT_DATABASE_URL"] = args.url
    from skuport.db import make_engine
    from skuport.exporting.pipeline import run_export
    from skuport.exporting.spec import ExportSpec

    engine = make_engine(args.url)
    where = "WHERE schema_id = 'schema-apparel'"
    with tempfile.TemporaryDirectory() as out:
        plain = run_export(
            ExportSpec(format="csv", schema_id="schema-apparel", dimension_scope=SCOPE), out_dir=Path(out)
        )
        data = plain.path.read_bytes()

    def scan() -> int:
        with engine.connect() as conn:
            return sum(
                len(row[0])
                for row in conn.execute(text(f"SELECT cells_text FROM records {where}")).yield_per(5000)
            )

    def squeeze() -> int:
        return len(igzip.compress(data, compresslevel=3))

    def baseline_script() -> None:
        with engine.connect() as conn:
            aliases = [
                a
                for (a,) in conn.execute(
                    text(
                        "SELECT alias FROM attributes WHERE schema_id = 'schema-apparel' ORDER BY sort_order"
                    )
                )
            ]
            rows = conn.execute(
                text(
                    f"SELECT id, parent_id, schema_id, lifecycle_state_id, created_at, "
                    f"updated_at, values_json FROM records {where} ORDER BY pk"
                )
            ).yield_per(5000)
            with (
                tempfile.TemporaryDirectory() as out,
                gzip.open(Path(out) / "feed.csv.gz", "wt", newline="", encoding="utf-8") as handle,
            ):
                writer = csv.writer(handle)
                writer.writerow(
                    ["id", "parentId", "schemaId", "lifecycleStateId", "createdAt", "updatedAt", *aliases]
                )
                for *fixed, values_json in rows:
                    values = json.loads(values_json)
                    cells = []
                    for alias in aliases:
                        best, rank = None, -1
                        for scoped in values.get(alias, ()):
                            scope = scoped["scope"]
                            if len(scope) > rank and all(SCOPE.get(k) == v for k, v in scope.items()):
                                best, rank = scoped["value"], len(scope)
                        cells.append("|".join(best) if isinstance(best, list) else best)
                    writer.writerow([*fixed, *cells])

    scan_s, scanned = _least(args.repeat, scan)
    compress_s, compressed = _least(args.repeat, squeeze)
    baseline, _ = _least(args.repeat, baseline_script)
    print(
        json.dumps(
            {
                "scan": scan_s,
                "scanned_bytes": scanned,
                "compress": compress_s,
                "csv_bytes": len(data),
                "compressed": compressed,
                "baseline": baseline,
                "records": plain.record_count,
            }
        )
    )


def _least(repeat: int, work: Any) -> tuple[float, Any]:
    """The least wall time of ``repeat`` runs of ``work`` (neighbours on a shared machine only add time),
    and what the last run returned."""
    best, result = float("inf"), None
    for _ in range(repeat):
        began = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - began)
    return best, result


def _workers(parallel: object) -> tuple[float, float]:
    """CPU seconds and the largest peak RSS (MB) of the export worker processes, read from /proc.

    The workers are children of multiprocessing's fork server, not of this process, so getrusage
    (RUSAGE_CHILDREN) does not see them.
    """
    pool = getattr(parallel, "_pool", None)
    cpu, rss = 0.0, 0.0
    for pid in list(getattr(pool, "_processes", None) or {}):
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu += (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                rss = max(rss, int(line.split()[1]) / 1024)
    return cpu, rss


def database_url(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    """The database the benchmark reads: ``--database-url``, or the SQLite file in ``--data-dir``."""
    if args.database_url:
        return str(args.database_url)
    if args.data_dir:
        return f"sqlite:///{(args.data_dir / 'skuport.db').resolve()}"
    parser.error("give --data-dir or --database-url")


def main() -> None:
    """Run every scenario in its own subprocess and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="SQLite data dir filled by skuport demo --records N")
    parser.add_argument("--database-url", help="PostgreSQL URL filled by skuport demo --records N")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--workers", default="1,2", help="SKUPORT_EXPORT_WORKERS values to try")
    parser.add_argument("--engines", default="auto", help="SKUPORT_EXPORT_ENGINE values to try (auto,rows)")
    parser.add_argument(
        "--settle",
        type=float,
        default=5.0,
        help="seconds to wait after syncing the previous run's file to disk (the kernel's "
        "write-back of a 600 MB file otherwise bills the next run)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs of each export, floor part and baseline; the fastest is reported (the machine's "
        "neighbours only ever add time)",
    )
    parser.add_argument("--engine", default="auto", help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--scenario", help=argparse.SUPPRESS)
    parser.add_argument("--reference", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reference:
        reference(args)
        return
    if args.child:
        args.workers = int(args.workers)
        child(args)
        return
    url = database_url(parser, args)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {url.split('://')[0]}",
        flush=True,
    )
    print(
        "| scenario | engine | workers | records | file bytes | seconds | records/s | CPU s | peak RSS MB "
        "(main / worker) | load avg |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    exported: dict[str, float] = {}
    for name in args.scenarios.split(","):
        for engine in args.engines.split(","):
            for workers in args.workers.split(","):
                runs = []
                for _ in range(args.repeat):
                    os.sync()
                    time.sleep(args.settle)
                    out = subprocess.run(
                        [
                            sys.executable,
                            __file__,
                            "--child",
                            "--url",
                            url,
                            "--scenario",
                            name,
                            "--workers",
                            workers,
                            "--engine",
                            engine,
                        ],
                        capture_output=True,
                        text=True,
                        check=False,
                    )
                    if out.returncode:
                        break
                    runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
                if out.returncode:
                    print(
                        f"| {name} | {engine} | {workers} | failed: {out.stderr.strip().splitlines()[-1]} |",
                        flush=True,
                    )
                    continue
                m = min(runs, key=lambda run: float(run["wall"]))  # and the highest memory of any run:
                m["rss_mb"] = max(run["rss_mb"] for run in runs)
                m["worker_rss_mb"] = max(run["worker_rss_mb"] for run in runs)
                exported.setdefault(name, m["wall"])
                print(
                    f"| {name} | {engine} | {workers} | {m['records']:,} | {m['bytes']:,} | "
                    f"{m['wall']:.2f} | {m['records'] / m['wall']:,.0f} | {m['cpu']:.2f} | "
                    f"{m['rss_mb']:.0f} / {m['worker_rss_mb']:.0f} | {m['load']:.1f} |",
                    flush=True,
                )
    for name, wall in exported.items():
        if name != "csv+gzip" and "csv+gzip" in exported:
            print(f"{name}: {wall:.2f} s, {wall / exported['csv+gzip']:.2f}x the default csv+gzip export")
    if "csv+gzip" in exported:
        os.sync()
        time.sleep(args.settle)
        out = subprocess.run(
            [sys.executable, __file__, "--reference", "--url", url, "--repeat", str(args.repeat)],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        floor = r["scan"] + r["compress"]
        wall = exported["csv+gzip"]
        print(
            f"\ncsv+gzip, {r['records']:,} records, fastest of {args.repeat}: export {wall:.2f} s; "
            f"floor {floor:.2f} s (scan of "
            f"{r['scanned_bytes'] / 1e6:,.0f} MB of cells text {r['scan']:.2f} s + ISA-L level 3 over "
            f"{r['csv_bytes'] / 1e6:,.0f} MB of csv {r['compress']:.2f} s) -> {wall / floor:.1f}x the "
            "floor; "
            f"baseline (values -> csv.writer -> gzip) {r['baseline']:.2f} s -> "
            f"{r['baseline'] / wall:.1f}x faster than the baseline"
        )


if __name__ == "__main__":
    main()
