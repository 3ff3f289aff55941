"""The procrastinate executor (scale-out): work deferred as procrastinate jobs, run by ``skuport worker``.

The queue lives in the PostgreSQL we already use: :meth:`ProcrastinateExecutor.enqueue` inserts the
procrastinate job **on the connection and in the transaction** that writes the run or export row,
so the work exists if and only if the row commits. procrastinate only carries the work to a worker;
everything else stays in the one work lifecycle: the lease, heartbeats, fencing, retries (in our
tables — procrastinate's own ``retry`` is never used), reaping.

No procrastinate ``lock`` is set: two runs of one job never overlap because the run table refuses a
second running run of a job (a partial unique index), before anything is queued. procrastinate's
fetch query checks locks with a correlated subquery: with 10,000 queued jobs of distinct locks one
fetch took 5.6 s on the benchmark machine (bench/README.md), so a worker would start one run every
5.6 s.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from skuport.config import Settings, get_settings
from skuport.scheduling.executor import TASKS, known
from skuport.scheduling.lifecycle import LIFECYCLE

log = logging.getLogger(__name__)

QUEUE = "skuport"
"""The procrastinate queue every skuport task is deferred to."""


class ExecutorUnavailable(RuntimeError):
    """The configured executor cannot run with this database."""


def conninfo(database_url: str) -> str:
    """The libpq connection string of a SQLAlchemy PostgreSQL URL; a clear error for anything else."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        raise ExecutorUnavailable(
            "SKUPORT_EXECUTOR=procrastinate needs PostgreSQL (its queue lives in the database, beside the "
            f"runs), but SKUPORT_DATABASE_URL is {url.get_backend_name()}. Set SKUPORT_DATABASE_URL="
            "postgresql+psycopg://user@host/db, or use SKUPORT_EXECUTOR=inprocess."
        )
    return str(url.set(drivername="postgresql").render_as_string(hide_password=False))


def build_app(settings: Settings, *, worker: bool) -> Any:
    """A procrastinate app with every registered task: async connector for workers, sync for deferring."""
    from procrastinate import App, PsycopgConnector, SyncPsycopgConnector

    info = conninfo(settings.resolved_database_url)
    connector = PsycopgConnector(conninfo=info) if worker else SyncPsycopgConnector(conninfo=info)
    app = App(connector=connector)
    for name in TASKS:
        _register(app, name)
    return app


def _register(app: Any, name: str) -> None:
    def run(ident: str) -> None:
        if LIFECYCLE.draining:
            # This worker stops: hand the work back to the queue rather than let it sit unclaimed.
            defer_again(name, ident)
            return
        TASKS[name](ident)

    run.__name__ = run.__qualname__ = name.replace("-", "_")
    app.task(name=name, queue=QUEUE)(run)


def defer_again(name: str, ident: str) -> None:
    """Queue ``ident`` again in a transaction of its own (a draining worker gives its fetched work back)."""
    from skuport.db import session_scope

    with session_scope() as session:
        get_queue().enqueue(session, name, ident)


class ProcrastinateExecutor:
    """Defers work as procrastinate jobs in the caller's transaction."""

    def __init__(self, settings: Settings | None = None) -> None:
        self._app = build_app(settings or get_settings(), worker=False)
        self._lock = threading.Lock()
        self._opened = False

    def enqueue(self, session: Session, task_name: str, ident: str) -> None:
        """Insert the job on ``session``'s own connection: it commits or rolls back with the row."""
        known(task_name)
        self._open()
        raw = session.connection().connection.driver_connection
        self._app.configure_task(task_name, connection=raw, queue=QUEUE).defer(ident=ident)

    def enqueue_many(self, session: Session, task_name: str, idents: list[str]) -> None:
        """One multi-row INSERT of procrastinate jobs on ``session``'s connection."""
        from procrastinate.jobs import Job

        if not idents:
            return
        known(task_name)
        self._open()
        jobs = [
            Job(
                id=None,
                queue=QUEUE,
                lock=None,
                queueing_lock=None,
                task_name=task_name,
                task_kwargs={"ident": ident},
            )
            for ident in idents
        ]
        raw = session.connection().connection.driver_connection
        self._app.job_manager.batch_defer_jobs(jobs=jobs, connection=raw)

    def _open(self) -> None:
        with self._lock:
            if not self._opened:
                self._app.open()
                self._opened = True

    def shutdown(self, *, wait: bool) -> None:
        """Close the defer-only app's pool."""
        with self._lock:
            if self._opened:
                self._app.close()
                self._opened = False


_QUEUE: ProcrastinateExecutor | None = None


def get_queue() -> ProcrastinateExecutor:
    """The process's defer-only executor."""
    global _QUEUE
    if _QUEUE is None:
        _QUEUE = ProcrastinateExecutor()
    return _QUEUE


async def fail_stalled_jobs(app: Any, *, seconds_since_heartbeat: float) -> list[int]:
    """Finish procrastinate jobs left ``doing`` by a dead worker (our reaper retries their runs)."""
    from procrastinate.jobs import Status

    finished: list[int] = []
    for job in await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=seconds_since_heartbeat):
        try:
            await app.job_manager.finish_job(job, status=Status.FAILED, delete_job=False)
            finished.append(int(job.id))
        except Exception:  # one bad job must not stop the sweep
            log.exception("could not finish stalled procrastinate job %s", job.id)
    if finished:
        log.warning("finished %d procrastinate job(s) of dead workers: %s", len(finished), finished)
    return finished


def sweep_stalled(settings: Settings) -> list[int]:
    """:func:`fail_stalled_jobs` from synchronous code (the housekeeping thread)."""

    async def sweep() -> list[int]:
        app = build_app(settings, worker=True)
        async with app.open_async():
            return await fail_stalled_jobs(app, seconds_since_heartbeat=settings.run_stale_after)

    return asyncio.run(sweep())


def run_worker(*, settings: Settings, concurrency: int, queues: list[str] | None) -> None:
    """``skuport worker``: run procrastinate's worker with our tasks until SIGTERM, then drain.

    The first SIGTERM (or SIGINT) stops fetching and lets running work finish within
    ``SKUPORT_SHUTDOWN_GRACE``; then it is cancelled (failed "shut down", retried elsewhere). A second
    signal ends the process at once.
    """
    app = build_app(settings, worker=True)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        async with app.open_async():
            worker = app._worker(
                queues=queues or [QUEUE],
                concurrency=concurrency,
                install_signal_handlers=False,
                wait=True,
                shutdown_graceful_timeout=settings.shutdown_grace + settings.shutdown_stop_wait + 5,
                update_heartbeat_interval=max(1.0, settings.run_heartbeat_interval),
            )
            stopping = asyncio.Event()

            def on_signal(signum: int) -> None:
                if stopping.is_set():
                    log.warning("%s again while shutting down: exiting at once", signal.Signals(signum).name)
                    os._exit(1)
                log.info(
                    "%s: stopping; running exports get %.0f s (SKUPORT_SHUTDOWN_GRACE) to finish, send "
                    "it again to exit at once",
                    signal.Signals(signum).name,
                    settings.shutdown_grace,
                )
                stopping.set()

            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, on_signal, sig)
            run = asyncio.create_task(worker.run())
            stop = asyncio.create_task(stopping.wait())
            await asyncio.wait({run, stop}, return_when=asyncio.FIRST_COMPLETED)
            if stopping.is_set():
                worker.stop()
                failed = await asyncio.to_thread(
                    LIFECYCLE.drain, grace=settings.shutdown_grace, stop_wait=settings.shutdown_stop_wait
                )
                if failed:
                    log.warning(
                        "shut down: %d export(s) cancelled, to be retried: %s", len(failed), ", ".join(failed)
                    )
            await run

    log.info("worker started (concurrency %d, queues %s)", concurrency, ", ".join(queues or [QUEUE]))
    asyncio.run(main())
