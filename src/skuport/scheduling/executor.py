"""Executors: where queued work runs (a thread pool in this process; procrastinate workers next).

Work is named by a task and the id of the row that holds everything it needs (a run, a one-off
export), so any executor — in this process or on another machine — can pick it up. Work is
enqueued *inside* the transaction that writes its row: it exists if and only if that row commits.
Tasks register themselves, with the :class:`WorkKind` of their rows, through :func:`task`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from functools import lru_cache
from typing import Protocol

from sqlalchemy import event
from sqlalchemy.orm import Session

from skuport.config import get_settings
from skuport.scheduling.lifecycle import LIFECYCLE, WorkKind

log = logging.getLogger(__name__)

TaskFn = Callable[[str], None]
TASKS: dict[str, TaskFn] = {}
"""Task name -> function taking the row id (e.g. ``"export-run" -> execute_run``)."""
KINDS: dict[str, WorkKind] = {}
"""Task name -> the kind of work its rows are."""


def task(kind: WorkKind) -> Callable[[TaskFn], TaskFn]:
    """Register a function as the task that runs work of ``kind``."""

    def register(func: TaskFn) -> TaskFn:
        TASKS[kind.task] = func
        KINDS[kind.task] = kind
        return func

    return register


def after_commit(session: Session, action: Callable[[], object]) -> None:
    """Call ``action`` once the session's transaction commits; a rollback forgets it."""
    pending: list[Callable[[], object]] | None = session.info.get("skuport_after_commit")
    if pending is None:
        pending = session.info["skuport_after_commit"] = []

        def committed(_session: Session) -> None:
            actions = list(pending)
            pending.clear()
            for run in actions:
                try:
                    run()
                except Exception:
                    log.exception("an after-commit action failed")

        event.listen(session, "after_commit", committed)
        event.listen(session, "after_rollback", lambda _session: pending.clear())
    pending.append(action)


class Executor(Protocol):
    """Runs tasks somewhere other than the caller's thread."""

    def enqueue(self, session: Session, task_name: str, ident: str) -> None:
        """Queue ``task_name`` for the row ``ident`` that ``session`` is writing (exists iff it commits)."""

    def enqueue_many(self, session: Session, task_name: str, idents: list[str]) -> None:
        """:meth:`enqueue` for many rows at once (a scheduler pass)."""

    def shutdown(self, *, wait: bool) -> None:
        """Stop accepting work; optionally wait for work in flight."""


def known(task_name: str) -> TaskFn:
    """The function of ``task_name``; a KeyError naming the known tasks otherwise."""
    func = TASKS.get(task_name)
    if func is None:
        raise KeyError(f"unknown task {task_name!r} (known: {', '.join(TASKS) or 'none'})")
    return func


class InProcessExecutor:
    """A bounded thread pool in the server process (the embedded mode)."""

    def __init__(self, workers: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="skuport-run")
        self._lock = threading.Lock()
        self._futures: set[Future[None]] = set()
        self._closed = False

    def enqueue(self, session: Session, task_name: str, ident: str) -> None:
        """Start the task on the pool after commit; until it runs, this process heartbeats it."""
        known(task_name)
        after_commit(session, lambda: self._start(task_name, ident))

    def enqueue_many(self, session: Session, task_name: str, idents: list[str]) -> None:
        """Start each after commit."""
        for ident in idents:
            self.enqueue(session, task_name, ident)

    def _start(self, task_name: str, ident: str) -> None:
        kind = KINDS[task_name]
        if self._closed:
            log.info(
                "not starting %s %s: shutting down (it stays queued for the next start)", task_name, ident
            )
            return
        LIFECYCLE.hold_queued(kind, ident)
        try:
            future = self._pool.submit(self._run, task_name, ident)
        except RuntimeError:  # the pool shut down meanwhile: the row stays queued
            LIFECYCLE.unqueue(kind, ident)
            return
        with self._lock:
            self._futures.add(future)
        future.add_done_callback(self._done)

    @staticmethod
    def _run(task_name: str, ident: str) -> None:
        try:
            TASKS[task_name](ident)
        finally:
            LIFECYCLE.unqueue(KINDS[task_name], ident)

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._futures.discard(future)
        if not future.cancelled() and (exc := future.exception()) is not None:
            log.error("task failed: %s", exc, exc_info=exc)

    def pending(self) -> int:
        """How many tasks are queued or running."""
        with self._lock:
            return len(self._futures)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no task is queued or running; False when ``timeout`` seconds pass first."""
        with self._lock:
            futures = list(self._futures)
        _, not_done = wait(futures, timeout=timeout)
        return not not_done

    def shutdown(self, *, wait: bool) -> None:
        """Stop the pool; queued tasks that never started stay queued rows for the next start."""
        self._closed = True
        self._pool.shutdown(wait=wait, cancel_futures=True)


class InMemoryExecutor:
    """Collects committed work and runs it only when asked: for fast, exact unit tests."""

    def __init__(self) -> None:
        self.queued: list[tuple[str, str]] = []

    def enqueue(self, session: Session, task_name: str, ident: str) -> None:
        """Remember the task once the transaction commits."""
        known(task_name)
        after_commit(session, lambda: self.queued.append((task_name, ident)))

    def enqueue_many(self, session: Session, task_name: str, idents: list[str]) -> None:
        """Remember each once the transaction commits."""
        for ident in idents:
            self.enqueue(session, task_name, ident)

    def run_all(self) -> list[str]:
        """Run every queued task in this thread, oldest first; returns their ids."""
        done: list[str] = []
        while self.queued:
            task_name, ident = self.queued.pop(0)
            TASKS[task_name](ident)
            done.append(ident)
        return done

    def shutdown(self, *, wait: bool) -> None:
        """Forget queued work."""
        self.queued.clear()


def _procrastinate() -> Executor:
    from skuport.scheduling.pgqueue import get_queue

    return get_queue()


EXECUTORS: dict[str, Callable[[], Executor]] = {
    "inprocess": lambda: InProcessExecutor(get_settings().run_workers),
    "memory": InMemoryExecutor,
    "procrastinate": _procrastinate,
}


@lru_cache
def get_executor() -> Executor:
    """The process-wide executor named by ``SKUPORT_EXECUTOR``."""
    name = get_settings().executor
    if name not in EXECUTORS:
        raise ValueError(f"unknown executor {name!r} (known: {', '.join(EXECUTORS)})")
    return EXECUTORS[name]()


def enqueue(session: Session, task_name: str, ident: str) -> None:
    """Queue work on the process-wide executor inside ``session``'s transaction."""
    get_executor().enqueue(session, task_name, ident)
