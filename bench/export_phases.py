"""Where a csv+gzip export's time goes: each phase of the frame engine timed alone, against the floor.

``export_bench.py`` measures exports end to end (reading, rendering and gzip overlap on two threads and
the writer's). This script runs each phase on its own, one after another over the same batches, and
takes the least CPU time of ``--repeat`` passes (the machine's neighbours add noise, never remove it):

- scan: the floor's scan, ``SELECT cells_text`` alone;
- read: the export's own query, one block of aggregates per batch (the fixed columns as JSON arrays,
  timestamps as stored, the positional cells texts joined);
- frame: a block into the frame the format renders (the arrays decoded, the cells text split into the
  plan's struct);
- decode cells_json: what the frame phase replaced on 2026-12-07 (``json_decode`` of each record's cells
  JSON, besides the Python tuples it was read as), for comparison;
- render: the format's expressions over the decoded batch;
- write: the rendered batch to CSV bytes;
- gzip: ISA-L level 3 over those bytes (the floor's other half).

    .venv/bin/python bench/export_phases.py --data-dir bench/out/sqlite-200000
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from export_bench import SCOPE, database_url  # bench/ is on sys.path when this script runs


def least(repeat: int, work: Callable[[], Any]) -> float:
    """The least CPU seconds (this process and its threads) of ``repeat`` runs of ``work``."""
    best = float("inf")
    for _ in range(repeat):
        began = time.process_time()
        work()
        best = min(best, time.process_time() - began)
    return best


def main() -> None:
    """Time each phase and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="SQLite data dir filled by skuport demo --records N")
    parser.add_argument("--database-url", help="PostgreSQL URL filled by skuport demo --records N")
    parser.add_argument("--limit", type=int, default=200_000, help="records to read (default 200,000)")
    parser.add_argument("--repeat", type=int, default=5, help="passes per phase; the least is kept")
    args = parser.parse_args()
    url = database_url(parser, args)
    os.environ["SKUPORT_DATABASE_URL"] = url

    import polars as pl
    from isal import isal_zlib
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    from skuport.db import get_engine
    from skuport.exporting import select as selection
    from skuport.exporting.columnar import DECODE_SLICE, ColumnarEncoder
    from skuport.exporting.plan import RAW_VALUES
    from skuport.exporting.prepared import prepare
    from skuport.exporting.spec import ExportSpec

    spec = ExportSpec(format="csv", compress=True, schema_id="schema-apparel", dimension_scope=SCOPE)
    engine = get_engine()
    with engine.connect() as conn:
        with Session(bind=conn) as session:
            prepared = prepare(session, spec)
        encoder = ColumnarEncoder(prepared.plan, prepared.format)

        def read() -> list[Any]:
            return list(encoder.batches(conn, prepared.record_clauses, limit=args.limit))

        def scan() -> None:
            query = text(
                "SELECT cells_text FROM records WHERE schema_id = 'schema-apparel' ORDER BY pk LIMIT :n"
            )
            for _row in conn.execute(query, {"n": args.limit}).yield_per(5000):
                pass

        batches = read()
        timings = {"scan": least(args.repeat, scan), "read": least(args.repeat, read)}
        if any(batch.block is None for batch in batches):
            parser.error("some records have no positional cells_text: the frame phase would not be alone")
        as_json = list(
            selection.record_batches(
                conn,
                prepared.record_clauses,
                limit=args.limit,
                batch_size=selection.COLUMNAR_BATCH_SIZE,
                cells="json",
                tuples=True,
                iso_times=False,
            )
        )
    records = sum(len(b) for b in batches)
    cells = [pl.Series([r[RAW_VALUES] for r in b], dtype=pl.String) for b in as_json]
    dtype = encoder._dtype

    def decode() -> None:
        for series in cells:
            for i in range(0, len(series), DECODE_SLICE):
                series.slice(i, DECODE_SLICE).str.json_decode(dtype)

    frames = [encoder.frame(batch, None) for batch in batches]
    rendered = [frame.select(encoder._exprs) for frame in frames]
    writer = prepared.format.writer(prepared.plan.columns, row_count=records)
    data = [writer.encode_frame(r) for r in rendered]
    timings |= {
        "frame": least(args.repeat, lambda: [encoder.frame(batch, None) for batch in batches]),
        "decode cells_json (what frame replaced on 2026-12-07)": least(args.repeat, decode),
        "render": least(args.repeat, lambda: [f.select(encoder._exprs) for f in frames]),
        "write": least(args.repeat, lambda: [writer.encode_frame(r) for r in rendered]),
        "gzip": least(
            args.repeat,
            lambda: [isal_zlib.compressobj(3, isal_zlib.DEFLATED, 31).compress(d) for d in data],
        ),
    }
    floor = timings["scan"] + timings["gzip"]
    print(f"{records:,} records, {url.split('://')[0]}, least CPU of {args.repeat} passes per phase\n")
    print("| phase | CPU s | µs / record | x the floor |")
    print("|---|---:|---:|---:|")
    for name, seconds in timings.items():
        print(f"| {name} | {seconds:.3f} | {seconds / records * 1e6:.2f} | {seconds / floor:.2f} |")
    export = sum(timings[k] for k in ("read", "frame", "render", "write", "gzip"))
    print(
        f"\nfloor (scan + gzip) {floor:.3f} s; the export's phases (read + frame + render + "
        f"write + gzip) {export:.3f} s = {export / floor:.2f}x the floor in CPU"
    )


if __name__ == "__main__":
    main()
