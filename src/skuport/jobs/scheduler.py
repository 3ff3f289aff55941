"""The scheduler: claims due ticks as run rows, retries lost runs, reaps dead and overdue ones.

Every decision is written against the database so any number of schedulers can share one
PostgreSQL (promise 1): a tick is claimed by inserting its run under the unique
``(job_id, scheduled_for, attempt)`` constraint, and the partial unique index on running runs
decides overlap (promise 4). The scheduler never runs an export: it hands the run id to the
executor. Time comes from an injectable clock so tests are exact.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from skuport.config import Settings, get_settings
from skuport.db import get_engine, session_scope, utcnow
from skuport.jobs.models import ExportJob, ExportRun, RunStatus, RunTrigger
from skuport.jobs.tasks import TASK_NAME, RunWork
from skuport.scheduling.cron import latest_at_or_before, next_after
from skuport.scheduling.executor import Executor, get_executor
from skuport.scheduling.lifecycle import reap, rowcount

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]


_DUE_PAGE = 2000
_MAX_FAILED = 10_000
"""Jobs of failed batches one pass tries one by one before it gives up until the next tick."""
"""Due jobs read per query in one scheduler pass."""


def _insert_ignoring_conflicts(session: Session) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING`` into export_runs, in the session's SQL dialect."""
    from sqlalchemy.dialects import postgresql, sqlite

    table: Any = ExportRun.__table__  # Core, so that many rows are one cached executemany
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


def new_run_id(scheduled_for: dt.datetime) -> str:
    """A run id that reads as its scheduled time (UTC): ``run-20260308-020000-3f9c1a5be207``.

    48 random bits: 10,000 jobs due in the same second collide with a chance of about 1 in 5 million
    (24 bits made a collision — a lost tick — likely).
    """
    return f"run-{scheduled_for.astimezone(dt.UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(6)}"


@dataclass
class Claim:
    """What claiming a tick produced."""

    run: ExportRun | None
    overlap: bool = False
    """True when the job already had a running run (a scheduled tick is then recorded as skipped)."""


def claim_run(
    session: Session,
    *,
    job_id: str,
    timezone: str,
    scheduled_for: dt.datetime,
    trigger: RunTrigger,
    now: dt.datetime,
    attempt: int = 1,
    retry_of: str | None = None,
    record_skip: bool = True,
) -> Claim:
    """Insert the run of (job, scheduled_for, attempt); the database decides who wins.

    Returns the new running run; on overlap, a skipped run (when ``record_skip``) or none; when the
    tick is already claimed (by another scheduler), none.
    """
    run = ExportRun(
        id=new_run_id(scheduled_for),
        job_id=job_id,
        status=RunStatus.RUNNING,
        trigger=trigger,
        attempt=attempt,
        scheduled_for=scheduled_for,
        started_at=now,
        heartbeat_at=now,
        retry_of=retry_of,
        worker=None,  # queued: the executor's worker claims it
    )
    try:
        with session.begin_nested():
            session.add(run)
            session.flush()
    except IntegrityError:
        pass
    else:
        return Claim(run)
    if _tick_taken(session, job_id=job_id, scheduled_for=scheduled_for, attempt=attempt):
        return Claim(None)
    running = session.scalar(
        select(ExportRun.id).where(ExportRun.job_id == job_id, ExportRun.status == RunStatus.RUNNING)
    )
    if not record_skip:
        return Claim(None, overlap=True)
    local = scheduled_for.astimezone(_zone(timezone)).strftime("%Y-%m-%d %H:%M")
    skipped = ExportRun(
        id=new_run_id(scheduled_for),
        job_id=job_id,
        status=RunStatus.SKIPPED,
        trigger=trigger,
        attempt=attempt,
        scheduled_for=scheduled_for,
        started_at=now,
        completed_at=now,
        retry_of=retry_of,
        error=f"Skipped the {local} ({timezone}) run: the previous run {running or ''} was still "
        "running. Runs of one job never overlap; if this repeats, the job takes longer than its "
        "schedule interval.",
    )
    try:
        with session.begin_nested():
            session.add(skipped)
            session.flush()
    except IntegrityError:
        return Claim(None, overlap=True)
    return Claim(skipped, overlap=True)


def _tick_taken(session: Session, *, job_id: str, scheduled_for: dt.datetime, attempt: int) -> bool:
    return (
        session.scalar(
            select(ExportRun.id).where(
                ExportRun.job_id == job_id,
                ExportRun.scheduled_for == scheduled_for,
                ExportRun.attempt == attempt,
            )
        )
        is not None
    )


def _zone(name: str) -> dt.tzinfo:
    import zoneinfo

    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return dt.UTC


@dataclass
class TickReport:
    """What one scheduler pass did (run ids)."""

    started: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)
    """Job ids whose latest missed tick was older than the grace period (not replayed)."""
    retried: list[str] = field(default_factory=list)
    reaped: list[str] = field(default_factory=list)


class Scheduler:
    """One scheduler instance; run as many as you like against one PostgreSQL."""

    def __init__(
        self,
        *,
        executor: Executor | None = None,
        clock: Clock = utcnow,
        settings: Settings | None = None,
    ) -> None:
        self._executor = executor
        self.clock = clock
        self.settings = settings or get_settings()
        self.kind = RunWork(self.settings)

    @property
    def executor(self) -> Executor:
        """Where claimed runs are queued (the process's executor unless one was given)."""
        return self._executor or get_executor()

    # -- one pass ---------------------------------------------------------------------------
    def tick(self, now: dt.datetime | None = None) -> TickReport:
        """Reap, retry and start whatever is due at ``now``; queue the started runs."""
        now = now or self.clock()
        report = TickReport()
        self.reap(now, report)
        self.schedule_due(now, report)
        self.retry_due(now, report)
        return report

    def schedule_due(self, now: dt.datetime, report: TickReport | None = None) -> TickReport:
        """Claim the latest due tick of every active job whose next run time has come.

        Due jobs are claimed ``SKUPORT_SCHEDULER_BATCH_SIZE`` at a time: one transaction moves them on,
        inserts their runs (the unique row still decides each tick) and queues them all at once. On
        PostgreSQL each batch is read ``FOR UPDATE SKIP LOCKED`` in that transaction, so schedulers
        running at once take disjoint batches and share a large pass.
        """
        report = report or TickReport()
        size = max(1, self.settings.scheduler_batch_size)
        if size > 1 and get_engine().dialect.name == "postgresql":
            return self._schedule_locked(now, report, size)
        seen: set[str] = set()
        while True:
            with session_scope(write=False) as session:
                rows = [
                    row
                    for row in session.execute(self._due(now).limit(_DUE_PAGE)).all()
                    if row[0] not in seen
                ]
            if not rows:
                return report
            seen.update(row[0] for row in rows)
            for start in range(0, len(rows), size):
                chunk = rows[start : start + size]
                try:
                    if size == 1:
                        self._schedule_job(chunk[0][0], now, report)
                    else:
                        with session_scope() as session:
                            started, conflicts = self._claim_batch(session, chunk, now, report)
                        report.started.extend(started)
                        self._settle(conflicts, now, report)
                except Exception:
                    log.exception("scheduling jobs %s failed", ", ".join(row[0] for row in chunk))

    @staticmethod
    def _due(now: dt.datetime) -> Any:
        return (
            select(ExportJob.id, ExportJob.next_run_at, ExportJob.schedule, ExportJob.timezone)
            .where(
                ExportJob.active.is_(True),
                ExportJob.next_run_at.is_not(None),
                ExportJob.next_run_at <= now,
            )
            .order_by(ExportJob.next_run_at)
        )

    def _schedule_locked(self, now: dt.datetime, report: TickReport, size: int) -> TickReport:
        """The PostgreSQL pass: batches locked as they are read (``FOR NO KEY UPDATE``, which a run's
        foreign key check does not wait for); another scheduler skips them. A database that fails the
        read fails the pass, as any tick; a batch that fails goes one job at a time."""
        failed: set[str] = set()
        while True:
            started: list[str] = []
            conflicts: list[dict[str, Any]] = []
            batch_failed = False
            with session_scope() as session:
                query = self._due(now)
                if failed:  # a batch that failed went one by one: never read it again this pass
                    query = query.where(ExportJob.id.not_in(failed))
                rows = session.execute(
                    query.limit(size).with_for_update(skip_locked=True, of=ExportJob, key_share=True)
                ).all()
                if not rows:
                    return report
                ids = [row[0] for row in rows]
                try:
                    started, conflicts = self._claim_batch(session, rows, now, report)
                except Exception:
                    log.exception("scheduling jobs %s failed; trying them one by one", ", ".join(ids))
                    session.rollback()  # its locks, its runs and its queued work go
                    batch_failed = True
            if batch_failed:
                failed.update(ids)
                if len(failed) > _MAX_FAILED:
                    log.error("%d due jobs failed to schedule; the next tick tries again", len(failed))
                    return report
                for job_id in ids:
                    try:
                        self._schedule_job(job_id, now, report)
                    except Exception:
                        log.exception("scheduling job %s failed", job_id)
                continue
            report.started.extend(started)
            try:
                self._settle(conflicts, now, report)
            except Exception:
                log.exception("settling the conflicting runs of jobs %s failed", ", ".join(ids))

    def _claim_batch(
        self, session: Session, rows: Sequence[Any], now: dt.datetime, report: TickReport
    ) -> tuple[list[str], list[dict[str, Any]]]:
        """Move the jobs on and insert their runs in ``session``: the runs started (queued once the
        session commits) and those another scheduler (or a busy job) held back, for :meth:`_settle`."""
        grace = dt.timedelta(seconds=self.settings.scheduler_catchup_grace)
        ticks: dict[tuple[str, str], tuple[dt.datetime | None, dt.datetime | None]] = {}
        moves: dict[tuple[Any, Any], list[str]] = {}
        claims: list[dict[str, Any]] = []
        for job_id, previous, schedule, timezone in rows:
            if (schedule, timezone) not in ticks:  # jobs share schedules: the cron maths once per pass
                ticks[schedule, timezone] = (
                    latest_at_or_before(schedule, timezone, now),
                    next_after(schedule, timezone, now),
                )
            at_or_before, following = ticks[schedule, timezone]
            latest = max(at_or_before or previous, previous)
            moves.setdefault((previous, following), []).append(job_id)
            if now - latest > grace:
                log.warning(
                    "job %s: missed tick %s is older than the catch-up grace; not replayed",
                    job_id,
                    latest.isoformat(),
                )
                report.missed.append(job_id)
                continue
            claims.append(
                {
                    "id": new_run_id(latest),
                    "job_id": job_id,
                    "status": RunStatus.RUNNING,
                    "trigger": RunTrigger.SCHEDULE,
                    "attempt": 1,
                    "scheduled_for": latest,
                    "started_at": now,
                    "heartbeat_at": now,
                    "worker": None,
                    "timezone": timezone,
                }
            )
        # Compare-and-set: of several schedulers holding the same view, one moves each job on
        # (one statement per (previous, following) pair: usually one for the whole batch).
        for (previous, following), job_ids in moves.items():
            session.execute(
                update(ExportJob)
                .where(
                    ExportJob.id.in_(job_ids),
                    ExportJob.next_run_at == previous,
                    ExportJob.active.is_(True),
                )
                .values(next_run_at=following)
                .execution_options(synchronize_session=False)
            )
        if not claims:
            return [], []
        inserted = set(
            session.connection()
            .execute(
                _insert_ignoring_conflicts(session).returning(ExportRun.__table__.c.id),
                [{k: v for k, v in c.items() if k != "timezone"} for c in claims],
            )
            .scalars()
        )
        started = [c["id"] for c in claims if c["id"] in inserted]
        self.executor.enqueue_many(session, TASK_NAME, started)
        return started, [c for c in claims if c["id"] not in inserted]

    def _settle(self, conflicts: list[dict[str, Any]], now: dt.datetime, report: TickReport) -> None:
        """Runs whose insert conflicted (taken by another scheduler, or the job is busy): one by one."""
        for claim in conflicts:
            with session_scope() as session:
                outcome = claim_run(
                    session,
                    job_id=claim["job_id"],
                    timezone=claim["timezone"],
                    scheduled_for=claim["scheduled_for"],
                    trigger=RunTrigger.SCHEDULE,
                    now=now,
                )
                if outcome.run is None:
                    continue
                if outcome.run.status == RunStatus.SKIPPED:
                    report.skipped.append(outcome.run.id)
                else:  # the conflicting run ended meanwhile
                    self.executor.enqueue(session, TASK_NAME, outcome.run.id)
                    report.started.append(outcome.run.id)

    def _schedule_job(self, job_id: str, now: dt.datetime, report: TickReport) -> None:
        # Read in one transaction, write in the next with the write first: on SQLite (WAL) a
        # transaction that reads and then writes fails when another writer committed in between.
        with session_scope() as session:
            row = session.execute(
                select(ExportJob.active, ExportJob.next_run_at, ExportJob.schedule, ExportJob.timezone).where(
                    ExportJob.id == job_id
                )
            ).first()
        if row is None:
            return
        active, previous, schedule, timezone = row
        if not active or previous is None or previous > now:
            return
        latest = max(latest_at_or_before(schedule, timezone, now) or previous, previous)
        following = next_after(schedule, timezone, now)
        with session_scope() as session:
            # Compare-and-set: of several schedulers holding the same view, one moves the job on.
            moved = rowcount(
                session.execute(
                    update(ExportJob)
                    .where(
                        ExportJob.id == job_id, ExportJob.next_run_at == previous, ExportJob.active.is_(True)
                    )
                    .values(next_run_at=following)
                    .execution_options(synchronize_session=False)
                )
            )
            if now - latest > dt.timedelta(seconds=self.settings.scheduler_catchup_grace):
                if moved:
                    log.warning(
                        "job %s: missed tick %s is older than the catch-up grace; not replayed",
                        job_id,
                        latest.isoformat(),
                    )
                    report.missed.append(job_id)
                return
            if not moved and session.get(ExportJob, job_id) is None:
                return
            # Even when another scheduler moved the job first, the unique row is what decides.
            claim = claim_run(
                session,
                job_id=job_id,
                timezone=timezone,
                scheduled_for=latest,
                trigger=RunTrigger.SCHEDULE,
                now=now,
            )
            if claim.run is None:
                return
            if claim.run.status == RunStatus.SKIPPED:
                report.skipped.append(claim.run.id)
                return
            run_id = claim.run.id
            self.executor.enqueue(session, TASK_NAME, run_id)
        report.started.append(run_id)

    def retry_due(self, now: dt.datetime, report: TickReport | None = None) -> TickReport:
        """Start the retries whose backoff has passed (one per failed attempt); a paused job's wait."""
        report = report or TickReport()
        with session_scope() as session:
            due = list(
                session.scalars(
                    select(ExportRun.id)
                    .join(ExportJob, ExportJob.id == ExportRun.job_id)
                    .where(
                        ExportJob.active.is_(True),
                        ExportRun.status == RunStatus.FAILED,
                        ExportRun.retry_at.is_not(None),
                        ExportRun.retry_at <= now,
                    )
                    .order_by(ExportRun.retry_at)
                    .limit(500)
                )
            )
        for failed_id in due:
            try:
                self._retry(failed_id, now, report)
            except Exception:
                log.exception("retrying run %s failed", failed_id)
        return report

    def _retry(self, failed_id: str, now: dt.datetime, report: TickReport) -> None:
        with session_scope() as session:
            row = session.execute(
                select(
                    ExportRun.job_id,
                    ExportRun.scheduled_for,
                    ExportRun.attempt,
                    ExportRun.retry_of,
                    ExportJob.active,
                    ExportJob.timezone,
                )
                .join(ExportJob, ExportJob.id == ExportRun.job_id)
                .where(ExportRun.id == failed_id, ExportRun.retry_at.is_not(None), ExportRun.retry_at <= now)
            ).first()
        if row is None:
            return
        job_id, scheduled_for, attempt, retry_of, active, timezone = row
        if not active:
            return  # paused: the retry waits for the resume
        with session_scope() as session:
            # Write first (see _schedule_job): take the retry; one scheduler wins it.
            taken = rowcount(
                session.execute(
                    update(ExportRun)
                    .where(ExportRun.id == failed_id, ExportRun.retry_at.is_not(None))
                    .values(retry_at=None)
                    .execution_options(synchronize_session=False)
                )
            )
            if not taken:
                return  # another scheduler took it
            claim = claim_run(
                session,
                job_id=job_id,
                timezone=timezone,
                scheduled_for=scheduled_for,
                trigger=RunTrigger.RETRY,
                now=now,
                attempt=attempt + 1,
                retry_of=retry_of or failed_id,
                record_skip=False,
            )
            if claim.overlap:
                session.rollback()  # the job is busy: keep the retry for a later tick
                return
            if claim.run is None:
                return
            run_id = claim.run.id
            self.executor.enqueue(session, TASK_NAME, run_id)
        report.retried.append(run_id)

    def reap(self, now: dt.datetime, report: TickReport | None = None) -> TickReport:
        """Fail running runs whose heartbeat stopped ("worker lost", retried) or whose deadline passed."""
        report = report or TickReport()
        report.reaped.extend(
            reap(
                self.kind,
                now=now,
                stale_after=self.settings.run_stale_after,
                include_queued=self.settings.executor != "procrastinate",
            )
        )
        return report
