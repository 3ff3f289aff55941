"""The executor interface: where claimed work runs (a thread pool now, procrastinate workers next).

Work is named by a task name and the id of a database row that already holds everything the task
needs (a run, a one-off export), so any executor — in this process or on another machine — can
pick it up. Tasks register themselves in :data:`TASKS`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from functools import lru_cache
from typing import Protocol

from skuport.config import get_settings

log = logging.getLogger(__name__)

TASKS: dict[str, Callable[[str], None]] = {}
"""Task name -> function taking the row id (e.g. ``"export-run" -> execute_run``)."""


def task(name: str) -> Callable[[Callable[[str], None]], Callable[[str], None]]:
    """Register a function as the task ``name``."""

    def register(func: Callable[[str], None]) -> Callable[[str], None]:
        TASKS[name] = func
        return func

    return register


class Executor(Protocol):
    """Runs tasks somewhere other than the caller's thread."""

    def submit(self, task_name: str, ident: str) -> None:
        """Hand over the task for the row ``ident`` (the row is committed before this call)."""

    def shutdown(self, *, wait: bool) -> None:
        """Stop accepting work; optionally wait for work in flight."""


class InProcessExecutor:
    """A bounded thread pool in the server process (the embedded mode)."""

    def __init__(self, workers: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="skuport-run")
        self._lock = threading.Lock()
        self._futures: set[Future[None]] = set()

    def submit(self, task_name: str, ident: str) -> None:
        """Queue the task on the pool; failures are logged (the task records its own outcome)."""
        func = TASKS.get(task_name)
        if func is None:
            raise KeyError(f"unknown task {task_name!r}")
        future = self._pool.submit(func, ident)
        with self._lock:
            self._futures.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._futures.discard(future)
        exc = future.exception()
        if exc is not None:
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
        """Stop the pool."""
        self._pool.shutdown(wait=wait, cancel_futures=not wait)


EXECUTORS: dict[str, Callable[[], Executor]] = {
    "inprocess": lambda: InProcessExecutor(get_settings().run_workers),
}


@lru_cache
def get_executor() -> Executor:
    """The process-wide executor named by ``SKUPORT_EXECUTOR``."""
    name = get_settings().executor
    if name not in EXECUTORS:
        raise ValueError(f"unknown executor {name!r} (known: {', '.join(EXECUTORS)})")
    return EXECUTORS[name]()
