"""The background of a server or scheduler process: housekeeping in, the work lifecycle drained out.

At start: sweep temporary files of dead processes, queue again what a stopped in-process executor
held in memory, and (when ``SKUPORT_SCHEDULER`` says so) start the housekeeping loop: the export-job
scheduler (ticks, retries), the reaper of every kind of work, and the expiry of one-off export files.
At stop: stop the loop, then drain (``SKUPORT_SHUTDOWN_GRACE``), so nothing is left running.

This is where domains meet infrastructure: ``scheduling/`` imports no domain, this module wires them.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.exc import OperationalError, SQLAlchemyError

from skuport.config import Settings, get_settings
from skuport.exporting import workdir
from skuport.exports.tasks import EXPORTS, expire_files
from skuport.jobs.scheduler import Scheduler
from skuport.jobs.tasks import RUNS
from skuport.scheduling import lifecycle
from skuport.scheduling.executor import InProcessExecutor, get_executor
from skuport.scheduling.lifecycle import LIFECYCLE

log = logging.getLogger(__name__)

KINDS = (RUNS, EXPORTS)
"""Every kind of background work (the reaper and the start-up requeue visit each)."""


class Housekeeper:
    """One thread: the scheduler's pass, the reaper of one-off exports, and the expiry of their files."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.scheduler = Scheduler(settings=settings)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._notifier: threading.Thread | None = None
        self._last_expiry = 0.0
        self._last_stalled = 0.0

    def pass_once(self) -> None:
        """Tick the job scheduler (it reaps runs), reap one-off exports, expire files when due."""
        self.scheduler.tick()
        durable = self.settings.executor == "procrastinate"
        lifecycle.reap(EXPORTS, stale_after=self.settings.run_stale_after, include_queued=not durable)
        if durable and time.monotonic() - self._last_stalled >= min(30.0, self.settings.run_stale_after):
            from skuport.scheduling.pgqueue import sweep_stalled

            self._last_stalled = time.monotonic()
            sweep_stalled(self.settings)
        if time.monotonic() - self._last_expiry >= self.settings.export_sweep_interval:
            self._last_expiry = time.monotonic()
            expire_files()

    def start(self) -> None:
        """Run :meth:`pass_once` every ``SKUPORT_SCHEDULER_INTERVAL`` seconds in a daemon thread."""
        self._thread = threading.Thread(target=self._loop, name="skuport-housekeeping", daemon=True)
        self._thread.start()
        self._notifier = threading.Thread(target=self._notify, name="skuport-notify", daemon=True)
        self._notifier.start()

    def _notify(self) -> None:
        """Send the run notifications that are due, on a thread of its own: a slow receiver never delays
        a scheduler pass."""
        from skuport.jobs.notifications import send_due

        while not self._stop.is_set():
            try:
                send_due(stop=self._stop)
            except Exception:
                log.exception("sending run notifications failed; the next pass tries again")
            self._stop.wait(self.settings.scheduler_interval)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.pass_once()
            except OperationalError as exc:
                # A locked SQLite file (another process writing) or a database that is briefly away: one
                # line, and the next pass retries. Nothing was half-done: each step is its own transaction.
                reason = "locked" if "locked" in str(exc.orig) else f"unavailable ({type(exc.orig).__name__})"
                log.warning(
                    "housekeeping pass skipped: the database is %s; retrying in %ss",
                    reason,
                    self.settings.scheduler_interval,
                )
            except Exception:
                log.exception("housekeeping pass failed")
            self._stop.wait(self.settings.scheduler_interval)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the loop and wait for the current pass to end."""
        self._stop.set()
        for thread in (self._thread, self._notifier):
            if thread is not None:
                thread.join(timeout)


@dataclass
class Background:
    """What :func:`start_background` started."""

    housekeeper: Housekeeper | None
    requeued: dict[str, list[str]] = field(default_factory=dict)


def start_background(settings: Settings | None = None) -> Background:
    """Sweep, requeue, and start housekeeping when ``SKUPORT_SCHEDULER`` says so."""
    settings = settings or get_settings()
    LIFECYCLE.reset()
    workdir.sweep()
    background = Background(housekeeper=None)
    executor = get_executor()
    if isinstance(executor, InProcessExecutor):
        # Its queue lived in the memory of a process that stopped: queue that work again here.
        for kind in KINDS:
            try:
                background.requeued[kind.task] = lifecycle.requeue(kind, executor.enqueue)
            except SQLAlchemyError as exc:  # e.g. a database not migrated yet: the server still starts
                log.warning("could not look for queued %s work: %s", kind.task, type(exc).__name__)
        for task, idents in background.requeued.items():
            if idents:
                log.info(
                    "queued again %d %s item(s) left by a stopped process: %s",
                    len(idents),
                    task,
                    ", ".join(idents[:20]),
                )
    if settings.scheduler:
        background.housekeeper = Housekeeper(settings)
        background.housekeeper.start()
        log.info("embedded scheduler started (tick every %.1f s)", settings.scheduler_interval)
    return background


def stop_background(background: Background, settings: Settings | None = None) -> list[str]:
    """Stop housekeeping, let running work finish within the grace, then cancel it ("shut down", retried)."""
    settings = settings or get_settings()
    if background.housekeeper is not None:
        background.housekeeper.stop()
    running = LIFECYCLE.leases()
    if running:
        log.info(
            "shutting down: %d export(s) running get %.0f s to finish", len(running), settings.shutdown_grace
        )
    failed = LIFECYCLE.drain(grace=settings.shutdown_grace, stop_wait=settings.shutdown_stop_wait)
    if failed:
        log.warning(
            "shut down: %d export(s) cancelled and failed, to be retried: %s", len(failed), ", ".join(failed)
        )
    if get_executor.cache_info().currsize:
        get_executor().shutdown(wait=False)
        get_executor.cache_clear()
    LIFECYCLE.reset()  # a process that starts its server again (tests) takes work again
    return failed


def exit_on_next_signal() -> bool:
    """While draining: a further SIGTERM or SIGINT ends the process at once (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return False

    def now(signum: int, _frame: object) -> None:
        log.warning("%s again while shutting down: exiting at once", signal.Signals(signum).name)
        os._exit(1)

    signal.signal(signal.SIGTERM, now)
    signal.signal(signal.SIGINT, now)
    return True


def stop_on_signals(stop: threading.Event, on_first: Callable[[], None] | None = None) -> None:
    """The first SIGTERM or SIGINT sets ``stop`` (a graceful drain follows); the next ends at once."""

    def first(signum: int, _frame: object) -> None:
        log.info(
            "%s: stopping; running exports get %.0f s (SKUPORT_SHUTDOWN_GRACE) to finish, send it again "
            "to exit at once",
            signal.Signals(signum).name,
            get_settings().shutdown_grace,
        )
        exit_on_next_signal()
        stop.set()
        if on_first is not None:
            on_first()

    signal.signal(signal.SIGTERM, first)
    signal.signal(signal.SIGINT, first)
