"""Scale-out benchmarks on the real PostgreSQL (procrastinate executor), figures in bench/README.md.

    .venv/bin/python bench/scale_bench.py scheduler --jobs 10000
    .venv/bin/python bench/scale_bench.py throughput --exports 100 --records 20000
    .venv/bin/python bench/scale_bench.py overhead --runs 500

- ``scheduler``: N active jobs due in the same minute; one scheduler pass. For each run: the time
  from the pass's start to its procrastinate job being committed (p50/p99), beside the per-job claim
  path (``--batch 1``) as the baseline. Then 2 ``skuport worker`` processes start and the time from
  queued to started is measured for a sample of the runs.
- ``throughput``: the same batch of exports (N exports of M records) run by 1 worker process and by 2
  (concurrency 1 each; with ``--pin`` also each on a core of its own) and by the embedded thread pool,
  alternating for ``--repeat`` rounds: runs per minute, the ratio, and the cores each part kept busy.
- ``overhead``: what the queue adds per run: defer in the writer's transaction, fetch, finish.

Each scenario creates its own database on the server named by ``--admin-url`` and drops it after.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

REPO = Path(__file__).resolve().parents[1]
ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


@contextlib.contextmanager
def database(admin_url: str, *, template: str | None = None) -> Iterator[str]:
    """A fresh database, migrated (a copy of ``template`` when given); yields its SQLAlchemy URL."""
    name = f"skuport_bench_{secrets.token_hex(4)}"
    copy = f' TEMPLATE "{template.rsplit("/", 1)[1]}"' if template else ""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"{copy}')
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    url = f"{base}/{name}"
    os.environ["SKUPORT_DATABASE_URL"] = url
    os.environ["SKUPORT_EXECUTOR"] = "procrastinate"
    from skuport.bootstrap import bootstrap
    from skuport.config import get_settings
    from skuport.db import reset_engine

    get_settings.cache_clear()
    reset_engine()
    bootstrap()
    try:
        yield url
    finally:
        reset_engine()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process so far (0 once it is gone)."""
    with contextlib.suppress(OSError):
        return _stat_cpu(Path(f"/proc/{pid}/stat").read_text())[1]
    return 0.0


def _stat_cpu(stat: str) -> tuple[str, float]:
    """A ``/proc/<pid>/stat`` line's command name and user + system CPU seconds."""
    head, _, tail = stat.rpartition(")")
    fields = tail.split()
    return head.split("(", 1)[1], (int(fields[11]) + int(fields[12])) / TICK


def postgres_cpu() -> float:
    """CPU seconds of every PostgreSQL process alive on this machine, backends included (a process that
    exits between two readings takes its seconds with it, so a batch opens no new connections)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            name, seconds = _stat_cpu(stat.read_text())
            if name.startswith("postgres"):
                total += seconds
    return total


def cpu_use(fleet: list[subprocess.Popen[bytes]]) -> dict[str, float]:
    """CPU seconds so far: the machine's busy time (not idle, not waiting for I/O) and the time the
    hypervisor gave to others (steal), PostgreSQL, this process, the workers."""
    user, nice, system, _idle, _iowait, irq, softirq, steal, *_ = (
        int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    )
    return {
        "machine": (user + nice + system + irq + softirq) / TICK,
        "stolen": steal / TICK,
        "postgres": postgres_cpu(),
        "bench": time.process_time(),
        "workers": sum(cpu_seconds(process.pid) for process in fleet),
    }


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def add_jobs(count: int, *, due: dt.datetime, schedule: str = "* * * * *", **job: Any) -> list[str]:
    """Insert ``count`` active local-destination jobs due at ``due`` (one bulk insert)."""
    from sqlalchemy import insert

    from skuport.db import session_scope
    from skuport.jobs.models import ExportJob

    ids = [f"expjob-bench-{i:05d}" for i in range(count)]
    rows = [
        {
            "id": job_id,
            "name": job_id,
            "destination_type": "local",
            "destination_config": {"path": f"bench/{job_id}"},
            "format": "csv",
            "schedule": schedule,
            "timezone": "UTC",
            "include_variants": True,
            "compress": False,
            "filename_template": "{jobId}-{datetime}.csv",
            "active": True,
            "delta": False,
            "next_run_at": due,
            **job,
        }
        for job_id in ids
    ]
    with session_scope() as session:
        session.execute(insert(ExportJob), rows)
    return ids


def event_times(kind: str) -> dict[int, float]:
    """procrastinate job id -> wall time (epoch seconds) of its ``kind`` event (deferred, started, …)."""
    from sqlalchemy import text

    from skuport.db import get_engine

    with get_engine().connect() as conn:
        rows = conn.execute(
            text("SELECT job_id, extract(epoch FROM at) FROM procrastinate_events WHERE type = :kind"),
            {"kind": kind},
        ).all()
    return {int(job_id): float(at) for job_id, at in rows}


def _scheduler_pass(url: str, batch: int, tick: str, go: Any, done: Any) -> None:
    """Another scheduler process: wait for the start, run the same pass, report how many it started."""
    os.environ["SKUPORT_DATABASE_URL"] = url
    os.environ["SKUPORT_EXECUTOR"] = "procrastinate"
    from skuport.config import get_settings
    from skuport.jobs.scheduler import Scheduler

    settings = get_settings().model_copy(update={"scheduler_batch_size": batch})
    scheduler = Scheduler(settings=settings)
    go.wait()
    done.put(len(scheduler.schedule_due(dt.datetime.fromisoformat(tick)).started))


def scheduler(args: argparse.Namespace) -> dict[str, Any]:
    """One pass over N due jobs: tick -> queued latency, per-job path beside the batched one; with
    ``--schedulers`` > 1, that many scheduler processes run the pass at once."""
    import multiprocessing

    from skuport.config import get_settings
    from skuport.jobs.scheduler import Scheduler

    out: dict[str, Any] = {"jobs": args.jobs, "schedulers": args.schedulers}
    spawn = multiprocessing.get_context("spawn")
    for batch in args.batches:
        with database(args.admin_url) as url:
            now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
            add_jobs(args.jobs, due=now)
            settings = get_settings().model_copy(update={"scheduler_batch_size": batch})
            tick = now + dt.timedelta(seconds=1)
            go, done = spawn.Event(), spawn.Queue()
            others = [
                spawn.Process(target=_scheduler_pass, args=(url, batch, tick.isoformat(), go, done))
                for _ in range(args.schedulers - 1)
            ]
            for process in others:
                process.start()
            time.sleep(8 if others else 0)  # the other processes import and connect, then wait for go
            scheduler_here = Scheduler(settings=settings)
            started = time.time()
            go.set()
            report = scheduler_here.schedule_due(tick)
            counts = [len(report.started), *(done.get(timeout=600) for _ in others)]
            elapsed = time.time() - started
            for process in others:
                process.join()
            queued = [at - started for at in event_times("deferred").values()]
            assert sum(counts) == args.jobs == len(queued), (counts, len(queued))
            result: dict[str, Any] = {
                "started_per_scheduler": counts,
                "pass_s": round(elapsed, 2),
                "tick_to_queued_p50_s": round(percentile(queued, 50), 3),
                "tick_to_queued_p99_s": round(percentile(queued, 99), 3),
            }
            if batch != 1 and args.sample:
                result.update(queued_to_started(args.sample))
            out[f"batch_{batch}"] = result
            print(json.dumps({f"batch_{batch}": result}), flush=True)
    return out


def workers(
    count: int, *, concurrency: int = 1, env: dict[str, str] | None = None, pin: bool = False
) -> list[subprocess.Popen[bytes]]:
    """Start ``skuport worker`` processes; with ``pin``, worker i runs on core i only (when there are
    that many cores), the way ``CPUAffinity=`` in a systemd unit would place it."""
    environment = {**os.environ, "SKUPORT_LOG_LEVEL": "warning", **(env or {})}
    cores = sorted(os.sched_getaffinity(0))

    def place(index: int) -> Any:
        if not pin or len(cores) < count:
            return None
        return lambda: os.sched_setaffinity(0, {cores[index]})

    return [
        subprocess.Popen(
            [sys.executable, "-m", "skuport.cli", "worker", "--concurrency", str(concurrency)],
            env=environment,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            preexec_fn=place(index),
        )
        for index in range(count)
    ]


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM and wait."""
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        process.wait(60)


def queued_to_started(sample: int) -> dict[str, Any]:
    """Start 2 workers once everything is queued; queued -> started of the first ``sample`` runs."""
    deferred = event_times("deferred")
    fleet = workers(2)
    began = time.time()
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and len(event_times("started")) < sample:
            time.sleep(0.2)
    finally:
        stop(fleet)
    started = sorted(event_times("started").items(), key=lambda item: item[1])[:sample]
    waits = [at - deferred[job] for job, at in started]
    span = started[-1][1] - started[0][1]
    return {
        "sample": len(started),
        "workers_up_to_first_start_s": round(started[0][1] - began, 2),
        "queued_to_started_p50_s": round(percentile(waits, 50), 2),
        "started_per_s_2_workers": round((len(started) - 1) / span, 1) if span else None,
    }


def throughput(args: argparse.Namespace) -> dict[str, Any]:
    """N exports of M records by 1 and 2 worker processes, and by the embedded thread pool.

    The records are loaded once into a template database; each batch runs on a fresh copy. The modes
    alternate for ``--repeat`` rounds (this VM's speed drifts by tens of percent from one minute to the
    next) and the median of each mode is reported, beside every round's figure.
    """
    modes = [("1 worker", 1, False), ("2 workers", 2, False)]
    if args.pin:
        modes += [("1 worker, pinned", 1, True), ("2 workers, pinned", 2, True)]
    modes.append(("embedded pool (2 threads)", 0, False))
    rounds: dict[str, list[dict[str, float]]] = {mode: [] for mode, _, _ in modes}
    with database(args.admin_url) as template:
        from skuport.demo import load_demo

        load_demo(records=args.records, seed=7)
        from skuport.db import reset_engine

        reset_engine()
        for round_ in range(args.repeat):
            for mode, count, pin in modes:
                with database(args.admin_url, template=template) as url:
                    root = Path(os.environ.get("TMPDIR", "/tmp")) / f"skuport-bench-{secrets.token_hex(3)}"
                    env = {"SKUPORT_LOCAL_ROOT": str(root), "SKUPORT_DATABASE_URL": url}
                    os.environ.update(env)
                    seconds, cpu = _run_batch(args.exports, count, env, pin=pin)
                    figures = {
                        "seconds": round(seconds, 1),
                        "runs_per_min": round(args.exports / seconds * 60, 1),
                        **{f"{part}_cores": round(used / seconds, 2) for part, used in cpu.items()},
                    }
                    rounds[mode].append(figures)
                    print(json.dumps({"round": round_ + 1, mode: figures}), flush=True)
                    subprocess.run(["rm", "-rf", str(root)], check=False)
    out: dict[str, Any] = {"exports": args.exports, "records": args.records, "rounds": args.repeat}
    for mode, figures in rounds.items():
        out[mode] = {key: round(statistics.median(f[key] for f in figures), 2) for key in figures[0]}
        out[mode]["runs_per_min_each_round"] = [f["runs_per_min"] for f in figures]

    def ratio(two: str, one: str) -> float:
        return round(out[two]["runs_per_min"] / out[one]["runs_per_min"], 2)

    out["ratio_2_to_1"] = ratio("2 workers", "1 worker")
    if args.pin:
        out["ratio_2_to_1_pinned"] = ratio("2 workers, pinned", "1 worker, pinned")
        out["ratio_2_pinned_to_1"] = ratio("2 workers, pinned", "1 worker")
    return out


def _run_batch(
    exports: int, worker_count: int, env: dict[str, str], *, pin: bool = False
) -> tuple[float, dict[str, float]]:
    """Seconds to run the batch, and the CPU seconds each part of the machine spent on it."""
    from sqlalchemy import func, select

    from skuport.config import get_settings
    from skuport.db import session_scope
    from skuport.jobs.models import ExportRun, RunStatus
    from skuport.jobs.scheduler import Scheduler
    from skuport.scheduling.executor import InProcessExecutor

    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    add_jobs(
        exports,
        due=now,
        schedule="0 0 1 1 *",
        schema_id="schema-apparel",
        dimension_scope={"dim-language": "seg-en", "dim-market": "seg-dk"},
    )
    embedded = worker_count == 0
    executor = InProcessExecutor(2) if embedded else None
    fleet = [] if embedded else workers(worker_count, env=env, pin=pin)
    time.sleep(0 if embedded else 3)  # workers connected and listening
    started = time.monotonic()
    before = cpu_use(fleet)
    Scheduler(executor=executor, settings=get_settings()).schedule_due(now + dt.timedelta(seconds=1))

    def succeeded() -> int:
        with session_scope(write=False) as session:
            return int(
                session.scalar(
                    select(func.count()).select_from(ExportRun).where(ExportRun.status == RunStatus.SUCCESS)
                )
                or 0
            )

    try:
        while succeeded() < exports:
            time.sleep(0.2)
        seconds = time.monotonic() - started
        after = cpu_use(fleet)
        return seconds, {part: after[part] - before[part] for part in before}
    finally:
        if executor is not None:
            executor.shutdown(wait=True)
        stop(fleet)


def overhead(args: argparse.Namespace) -> dict[str, Any]:
    """Per run: the defer inside the writer's transaction, then fetch and finish by one worker.

    defer: one scheduler pass with the procrastinate executor minus the same pass with the in-memory
    executor (which only records). fetch: from the worker finishing one job to starting the next, on
    one worker with concurrency 1. finish: from our task's end (the run's completedAt) to procrastinate
    recording the job succeeded.
    """
    from sqlalchemy import text

    from skuport.config import get_settings
    from skuport.db import get_engine
    from skuport.jobs.scheduler import Scheduler
    from skuport.scheduling.executor import InMemoryExecutor

    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    passes: dict[str, float] = {}
    for name, executor in (("memory", InMemoryExecutor()), ("procrastinate", None)):
        with database(args.admin_url) as url:
            add_jobs(args.runs, due=now)
            settings = get_settings().model_copy(update={"scheduler_batch_size": args.batch})
            started = time.perf_counter()
            Scheduler(executor=executor, settings=settings).schedule_due(now + dt.timedelta(seconds=1))
            passes[name] = time.perf_counter() - started
            if executor is not None:
                continue
            root = Path(os.environ.get("TMPDIR", "/tmp")) / f"skuport-bench-{secrets.token_hex(3)}"
            fleet = workers(1, env={"SKUPORT_LOCAL_ROOT": str(root), "SKUPORT_DATABASE_URL": url})
            try:
                while len(event_times("succeeded")) < args.runs:
                    time.sleep(0.2)
            finally:
                stop(fleet)
            with get_engine().connect() as conn:
                rows = conn.execute(
                    text(
                        "SELECT extract(epoch FROM s.at), extract(epoch FROM d.at), "
                        "extract(epoch FROM r.completed_at) FROM procrastinate_jobs j "
                        "JOIN procrastinate_events s ON s.job_id = j.id AND s.type = 'started' "
                        "JOIN procrastinate_events d ON d.job_id = j.id AND d.type = 'succeeded' "
                        "JOIN export_runs r ON r.id = j.args->>'ident' ORDER BY s.at"
                    )
                ).all()
            subprocess.run(["rm", "-rf", str(root)], check=False)
    fetches = [float(rows[i][0]) - float(rows[i - 1][1]) for i in range(1, len(rows))]
    finishes = [float(done) - float(completed) for _, done, completed in rows]
    return {
        "runs": args.runs,
        "batch": args.batch,
        "defer_ms_per_run": round((passes["procrastinate"] - passes["memory"]) / args.runs * 1000, 3),
        "fetch_ms_p50": round(statistics.median(fetches) * 1000, 2),
        "finish_ms_p50": round(statistics.median(finishes) * 1000, 2),
    }


def main() -> None:
    """Parse the command line and run one scenario."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--admin-url", default=os.environ.get("SKUPORT_BENCH_PG_ADMIN", ADMIN))
    sub = parser.add_subparsers(dest="scenario", required=True)
    one = sub.add_parser("scheduler")
    one.add_argument("--jobs", type=int, default=10_000)
    one.add_argument("--sample", type=int, default=1000, help="runs whose queued -> started is measured")
    one.add_argument("--schedulers", type=int, default=1, help="scheduler processes running the pass at once")
    one.add_argument(
        "--batches",
        type=lambda v: [int(b) for b in v.split(",")],
        default=[1, 500],
        help="jobs claimed per transaction, comma-separated (1: one by one, the baseline)",
    )
    two = sub.add_parser("throughput")
    two.add_argument("--exports", type=int, default=100)
    two.add_argument("--records", type=int, default=20_000)
    two.add_argument(
        "--pin", action="store_true", help="also run each worker on one core of its own (sched_setaffinity)"
    )
    two.add_argument("--repeat", type=int, default=3, help="rounds of every mode, alternating")
    three = sub.add_parser("overhead")
    three.add_argument("--runs", type=int, default=500)
    three.add_argument("--batch", type=int, default=1, help="jobs claimed per transaction (1: one by one)")
    args = parser.parse_args()
    result = {"scheduler": scheduler, "throughput": throughput, "overhead": overhead}[args.scenario](args)
    print(json.dumps({args.scenario: result}, indent=2))


if __name__ == "__main__":
    main()
