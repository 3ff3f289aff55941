"""The one work lifecycle: claim, lease, heartbeat with progress, fence, finish, reap, drain.

``queued -> running -> ended``, written once for every unit of background work (an export run, a
one-off export). Each is a row carrying the lease columns ``status``, ``worker``, ``attempt``,
``heartbeat_at``, ``deadline_at``, ``progress_done`` and ``progress_total``; a domain describes its
table with a :class:`WorkKind` and this module never imports a domain.

- **Claim**: ``queued (worker NULL) -> running (worker = this process)``, atomically. The pair
  (worker, attempt) is the fencing token of the :class:`Lease`.
- **Heartbeat**: one thread per process writes ``heartbeat_at`` and progress for every lease it holds,
  fenced; a row that is no longer ours (reaped, interrupted, deleted) cancels the work.
- **Fence**: :meth:`Lease.check` is called right before every step a destination's reader can see;
  it raises :class:`LeaseLost` when the work was cancelled, timed out or is no longer owned.
- **Reap**: :func:`reap` fails work whose heartbeat stopped ("worker lost") or whose deadline passed;
  the kind decides whether and when it is retried.
- **Drain**: :meth:`Lifecycle.drain` stops claiming, lets running work finish within the grace, then
  cancels it and records "shut down" (retried).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import socket
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import Session

from skuport.config import get_settings
from skuport.db import get_engine, session_scope, utcnow
from skuport.errors import WorkStopped
from skuport.logs import WORK

log = logging.getLogger(__name__)

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
"""Identifies this process on the work it claims."""

WORKER_LOST = "worker lost"
SHUT_DOWN = "server shut down"


def rowcount(result: object) -> int:
    """Rows an UPDATE or DELETE touched."""
    return int(getattr(result, "rowcount", 0) or 0)


LeaseLost = WorkStopped
"""Raised by :meth:`Lease.check`: the work was cancelled, timed out, or is no longer ours."""


@dataclass(frozen=True)
class Failure:
    """Why a unit of work failed, and whether it is worth another attempt."""

    code: str
    """A short kind, e.g. ``WorkerLost``, ``ShutDown``, ``DeliveryError``."""
    message: str
    retry: bool = False


class WorkKind(ABC):
    """A table of work and what its domain decides: the hard timeout, how failures are recorded."""

    task: ClassVar[str]
    """The executor task that runs this kind of work."""
    model: ClassVar[Any]
    """The mapped class; it has the lease columns and ``id``."""
    queued: ClassVar[str]
    running: ClassVar[str]

    def claim_values(self, now: dt.datetime) -> dict[str, Any]:
        """Extra columns set when the work is claimed (e.g. ``started_at``)."""
        return {}

    @abstractmethod
    def timeout(self, session: Session, ident: str) -> float:
        """The hard timeout of this unit of work, in seconds."""

    @abstractmethod
    def fail(
        self, session: Session, *, where: ColumnElement[bool], failure: Failure, now: dt.datetime
    ) -> list[str]:
        """Record ``failure`` on the rows matching ``where`` (retrying when it says so); ids changed."""

    def log_fields(self, session: Session, ident: str) -> dict[str, Any]:
        """The ids every log line about this work carries (e.g. ``runId`` and ``jobId``)."""
        return {"workId": ident}

    @abstractmethod
    def finished(self, session: Session, ident: str, now: dt.datetime) -> None:
        """In the transaction that recorded the work's success: what else that success means."""

    def queued_here(self, ident: str) -> ColumnElement[bool]:
        """The row while it waits in an executor's queue."""
        m = self.model
        return and_(m.id == ident, m.status == self.queued, m.worker.is_(None))


@dataclass(eq=False)
class Lease:
    """The claim of one unit of work by this process: the fencing token and its cancellation."""

    kind: WorkKind
    ident: str
    worker: str
    attempt: int
    timeout: float
    started: float = field(default_factory=time.monotonic)
    cancel: threading.Event = field(default_factory=threading.Event)
    reason: str | None = None
    done: int | None = None
    total: int | None = None
    ended: threading.Event = field(default_factory=threading.Event)
    wake: threading.Event | None = None
    """Set on the first progress report, so the heartbeat writes (done, total) at once."""

    @property
    def where(self) -> ColumnElement[bool]:
        """The row, as long as this lease still owns it."""
        m = self.kind.model
        return and_(
            m.id == self.ident,
            m.status == self.kind.running,
            m.worker == self.worker,
            m.attempt == self.attempt,
        )

    def stop(self, reason: str) -> None:
        """Ask the work to stop at its next batch, chunk or attempt; the first reason given stands."""
        self.reason = self.reason or reason
        self.cancel.set()

    def progress(self, done: int, total: int | None) -> None:
        """Remember progress; the next heartbeat writes it (the first report at once)."""
        first = self.done is None
        self.done, self.total = done, total
        if first and self.wake is not None:
            self.wake.set()

    def overdue(self) -> bool:
        """True once the hard timeout has passed."""
        return time.monotonic() - self.started > self.timeout

    def check(self) -> None:
        """Raise :class:`LeaseLost` unless the work may still do something a reader can see."""
        if self.overdue():
            self.stop("timeout")
        if self.cancel.is_set():
            raise LeaseLost(self.reason or "cancelled")
        with get_engine().connect() as conn:
            owned = conn.execute(select(self.kind.model.id).where(self.where)).first()
        if owned is None:
            self.stop("gone")
            raise LeaseLost("gone")


class Lifecycle:
    """The leases this process holds, the work queued in it, and the one thread that heartbeats both."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._leases: dict[tuple[str, str], Lease] = {}
        self._queued: dict[tuple[str, str], WorkKind] = {}
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.draining = False

    # -- claiming and ending ----------------------------------------------------------------------
    def claim(self, kind: WorkKind, ident: str, *, now: dt.datetime | None = None) -> Lease | None:
        """Take queued work (atomically); None when it is gone, taken, ended, or this process drains."""
        self.unqueue(kind, ident)
        if self.draining:
            return None
        now = now or utcnow()
        m = kind.model
        with session_scope() as session:
            timeout = max(1.0, float(kind.timeout(session, ident)))
            claimed = rowcount(
                session.execute(
                    update(m)
                    .where(kind.queued_here(ident))
                    .values(
                        status=kind.running,
                        worker=WORKER_ID,
                        heartbeat_at=now,
                        deadline_at=now + dt.timedelta(seconds=timeout),
                        **kind.claim_values(now),
                    )
                    .execution_options(synchronize_session=False)
                )
            )
            if not claimed:
                return None
            attempt = session.scalar(select(m.attempt).where(m.id == ident))
            fields = kind.log_fields(session, ident)
        WORK.set({**fields, "attempt": int(attempt or 1), "worker": WORKER_ID})
        lease = Lease(
            kind=kind,
            ident=ident,
            worker=WORKER_ID,
            attempt=int(attempt or 1),
            timeout=timeout,
            wake=self._wake,
        )
        with self._lock:
            self._leases[(kind.task, ident)] = lease
        self._ensure_pump()
        return lease

    def finish(self, lease: Lease, values: dict[str, Any], *, now: dt.datetime | None = None) -> bool:
        """Record the outcome of work that succeeded, if the lease still owns it; release it."""
        now = now or utcnow()
        try:
            with session_scope() as session:
                done = rowcount(
                    session.execute(
                        update(lease.kind.model)
                        .where(lease.where)
                        .values(heartbeat_at=now, **values)
                        .execution_options(synchronize_session=False)
                    )
                )
                if done:
                    lease.kind.finished(session, lease.ident, now)
                return bool(done)
        finally:
            self.release(lease)

    def fail(self, lease: Lease, failure: Failure, *, now: dt.datetime | None = None) -> bool:
        """Record a failure of leased work (the kind decides the retry); release it."""
        try:
            with session_scope() as session:
                return bool(lease.kind.fail(session, where=lease.where, failure=failure, now=now or utcnow()))
        finally:
            self.release(lease)

    def release(self, lease: Lease) -> None:
        """Forget the lease (its outcome is recorded, or someone else's stands)."""
        with self._lock:
            self._leases.pop((lease.kind.task, lease.ident), None)
        WORK.set(None)
        lease.ended.set()

    # -- work queued in this process ----------------------------------------------------------------
    def hold_queued(self, kind: WorkKind, ident: str) -> None:
        """Heartbeat work waiting in this process's queue, so the reaper knows its queue is alive."""
        with self._lock:
            self._queued[(kind.task, ident)] = kind
        self._ensure_pump()

    def unqueue(self, kind: WorkKind, ident: str) -> None:
        """The work left this process's queue."""
        with self._lock:
            self._queued.pop((kind.task, ident), None)

    # -- looking and cancelling ------------------------------------------------------------------
    def leases(self) -> list[Lease]:
        """The leases held now."""
        with self._lock:
            return list(self._leases.values())

    def cancel(self, task: str, ident: str, reason: str) -> bool:
        """Stop the work ``ident`` of ``task`` if this process runs it."""
        with self._lock:
            lease = self._leases.get((task, ident))
        if lease is not None:
            lease.stop(reason)
        return lease is not None

    # -- the heartbeat ---------------------------------------------------------------------------
    def _ensure_pump(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._pump, name="skuport-heartbeat", daemon=True)
            self._thread.start()
        self._wake.set()

    def _pump(self) -> None:
        while True:
            self._wake.wait(max(0.2, get_settings().run_heartbeat_interval))
            self._wake.clear()
            try:
                self.beat()
            except Exception:
                log.exception("heartbeat failed")
            with self._lock:
                if not self._leases and not self._queued:
                    self._thread = None
                    return

    def beat(self, now: dt.datetime | None = None) -> int:
        """Write one heartbeat (with progress) per lease and queued item; stop work that is not ours."""
        now = now or utcnow()
        with self._lock:
            leases = list(self._leases.values())
            queued = list(self._queued.items())
        if not leases and not queued:
            return 0
        with get_engine().begin() as conn:
            for lease in leases:
                if lease.overdue():
                    lease.stop("timeout")
                values: dict[str, Any] = {"heartbeat_at": now}
                if lease.done is not None:
                    values.update(progress_done=lease.done, progress_total=lease.total)
                if not rowcount(conn.execute(update(lease.kind.model).where(lease.where).values(**values))):
                    lease.stop("gone")
            for (_task, ident), kind in queued:
                conn.execute(update(kind.model).where(kind.queued_here(ident)).values(heartbeat_at=now))
        return len(leases) + len(queued)

    # -- shutdown ----------------------------------------------------------------------------------
    def drain(self, *, grace: float, stop_wait: float) -> list[str]:
        """Stop claiming; let leased work finish within ``grace`` s; then cancel it and record "shut down".

        Cancelled work gets ``stop_wait`` seconds to stop by itself (a network call is bounded by its
        destination's timeout) and records its own failure; what is still held after that is failed
        here, fenced, so it can never deliver afterwards. Returns the ids failed by the shutdown.
        """
        self.draining = True
        deadline = time.monotonic() + max(0.0, grace)
        for lease in self.leases():
            lease.ended.wait(max(0.0, deadline - time.monotonic()))
        stopping = self.leases()
        for lease in stopping:
            lease.stop("shutdown")
        deadline = time.monotonic() + max(0.0, stop_wait)
        for lease in stopping:
            lease.ended.wait(max(0.0, deadline - time.monotonic()))
        failed = [lease.ident for lease in stopping]
        for lease in self.leases():
            self.fail(lease, shutdown_failure())
        with self._lock:
            self._queued.clear()
        return failed

    def reset(self) -> None:
        """Accept work again (tests, and a server started twice in one process)."""
        self.draining = False


def shutdown_failure() -> Failure:
    """The failure of work cancelled by a shutdown: never the work's fault, so retried."""
    return Failure("ShutDown", f"{SHUT_DOWN} while the export was running", retry=True)


LIFECYCLE = Lifecycle()
"""This process's leases."""


# --- the reaper ----------------------------------------------------------------------------------------


def reap(
    kind: WorkKind,
    *,
    now: dt.datetime | None = None,
    stale_after: float | None = None,
    include_queued: bool = True,
) -> list[str]:
    """Fail work whose heartbeat stopped (worker lost, retried) or whose deadline passed (timed out).

    ``include_queued``: queued work counts as lost when its heartbeat stops too, as it does where the
    queue lives in a process's memory; a durable queue (procrastinate) keeps queued work for a worker.
    """
    now = now or utcnow()
    stale_after = get_settings().run_stale_after if stale_after is None else stale_after
    m = kind.model
    stale_before = now - dt.timedelta(seconds=stale_after)
    lost = and_(
        m.status.in_({kind.queued, kind.running}),
        or_(m.heartbeat_at < stale_before, m.heartbeat_at.is_(None)),
    )
    if not include_queued:
        lost = and_(lost, m.worker.is_not(None))
    overdue = and_(m.status == kind.running, m.deadline_at < now)
    with session_scope(write=False) as session:
        rows = session.execute(
            select(m.id, m.heartbeat_at, m.deadline_at).where(or_(lost, overdue)).limit(500)
        ).all()
    reaped: list[str] = []
    for ident, heartbeat_at, deadline_at in rows:
        if deadline_at is not None and deadline_at < now:
            with session_scope(write=False) as session:
                timeout = kind.timeout(session, ident)
            where = and_(m.id == ident, overdue)
            failure = Failure(
                "TimedOut",
                f"timed out after {timeout:g} s (the process running it stopped "
                "answering before its deadline)",
            )
        else:
            seen = f"{heartbeat_at:%Y-%m-%d %H:%M:%S} UTC" if heartbeat_at else "it was queued"
            where = and_(m.id == ident, lost)
            failure = Failure(
                "WorkerLost",
                f"{WORKER_LOST}: no heartbeat since {seen} (the process running "
                "the export stopped or crashed)",
                retry=True,
            )
        with session_scope() as session:
            if kind.fail(session, where=where, failure=failure, now=now):
                reaped.append(ident)
                log.warning("%s %s: %s", kind.task, ident, failure.message)
    return reaped


def requeue(kind: WorkKind, enqueue: Any) -> list[str]:
    """Queue again the work a stopped in-process executor held in memory (safe: claiming is atomic)."""
    m = kind.model
    with session_scope(write=False) as session:
        idents = list(
            session.scalars(
                select(m.id).where(m.status == kind.queued, m.worker.is_(None)).order_by(m.id).limit(10_000)
            )
        )
    for ident in idents:
        with session_scope() as session:
            enqueue(session, kind.task, ident)
    return idents
