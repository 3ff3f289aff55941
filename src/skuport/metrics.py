"""``/metrics`` (Prometheus text format) and ``/readyz``: what every process did, read from the database.

Runs, exports and the queue are rows in the one database, so the figures are computed from it at
scrape time: any API replica answers for the whole fleet (schedulers and workers on other machines
included), and nothing is lost when a process restarts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Float, case, cast, func, select
from sqlalchemy.orm import Session

from skuport.config import get_settings
from skuport.db import session_scope, utcnow
from skuport.exports.models import Export, ExportStatus
from skuport.jobs.models import ExportJob, ExportRun, RunStatus

DURATION_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)
"""Run duration histogram buckets, seconds."""
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _seconds(session: Session, later: Any, earlier: Any) -> Any:
    """``later - earlier`` in seconds, in the database's own arithmetic."""
    if session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


class DatabaseCollector(Collector):
    """Collects every skuport metric from the database."""

    def collect(self) -> Iterator[Any]:
        """One scrape: a few grouped queries."""
        now = utcnow()
        settings = get_settings()
        with session_scope(write=False) as session:
            yield from self._runs(session)
            yield from self._durations(session)
            yield from self._volume(session)
            yield from self._queue(session, now, stale_after=settings.run_stale_after)
            yield from self._lag(session, now)

    def _runs(self, session: Session) -> Iterator[Any]:
        runs = GaugeMetricFamily(
            "skuport_runs", "Export runs in the history, by status and trigger.", labels=["status", "trigger"]
        )
        for status, trigger, count in session.execute(
            select(ExportRun.status, ExportRun.trigger, func.count()).group_by(
                ExportRun.status, ExportRun.trigger
            )
        ):
            runs.add_metric([status, trigger], count)
        yield runs
        deliveries = GaugeMetricFamily(
            "skuport_deliveries",
            "Ended runs by destination type and outcome.",
            labels=["destination", "outcome"],
        )
        for destination, status, count in session.execute(
            select(ExportJob.destination_type, ExportRun.status, func.count())
            .join(ExportJob, ExportJob.id == ExportRun.job_id)
            .where(ExportRun.status.in_([RunStatus.SUCCESS, RunStatus.FAILED]))
            .group_by(ExportJob.destination_type, ExportRun.status)
        ):
            deliveries.add_metric([destination, status], count)
        yield deliveries

    def _durations(self, session: Session) -> Iterator[Any]:
        seconds = cast(_seconds(session, ExportRun.completed_at, ExportRun.started_at), Float)
        columns = [func.sum(case((seconds <= bound, 1), else_=0)) for bound in DURATION_BUCKETS]
        row = session.execute(
            select(func.count(), func.coalesce(func.sum(seconds), 0.0), *columns).where(
                ExportRun.status == RunStatus.SUCCESS, ExportRun.completed_at.is_not(None)
            )
        ).one()
        count, total, *cumulative = row
        buckets = [(str(bound), int(n or 0)) for bound, n in zip(DURATION_BUCKETS, cumulative, strict=True)]
        buckets.append(("+Inf", int(count or 0)))
        yield HistogramMetricFamily(
            "skuport_run_duration_seconds",
            "Duration of successful export runs.",
            buckets=buckets,
            sum_value=float(total or 0),
        )

    def _volume(self, session: Session) -> Iterator[Any]:
        records, size = session.execute(
            select(func.sum(ExportRun.record_count), func.sum(ExportRun.file_size)).where(
                ExportRun.status == RunStatus.SUCCESS
            )
        ).one()
        one_off_records, one_off_size = session.execute(
            select(func.sum(Export.record_count), func.sum(Export.file_size)).where(
                Export.status == ExportStatus.COMPLETED
            )
        ).one()
        exported = GaugeMetricFamily(
            "skuport_records_exported", "Records written by successful exports.", labels=["kind"]
        )
        exported.add_metric(["run"], int(records or 0))
        exported.add_metric(["one-off"], int(one_off_records or 0))
        yield exported
        written = GaugeMetricFamily(
            "skuport_bytes_exported", "Bytes of the files of successful exports.", labels=["kind"]
        )
        written.add_metric(["run"], int(size or 0))
        written.add_metric(["one-off"], int(one_off_size or 0))
        yield written

    def _queue(self, session: Session, now: dt.datetime, *, stale_after: float) -> Iterator[Any]:
        depth = GaugeMetricFamily("skuport_queue_depth", "Work queued and not yet claimed.", labels=["kind"])
        oldest = GaugeMetricFamily(
            "skuport_queue_oldest_seconds", "Age of the oldest queued work.", labels=["kind"]
        )
        for kind, model, queued, since in (
            ("run", ExportRun, RunStatus.RUNNING, ExportRun.started_at),
            ("one-off", Export, ExportStatus.PENDING, Export.created_at),
        ):
            count, first = session.execute(
                select(func.count(), func.min(since)).where(model.status == queued, model.worker.is_(None))
            ).one()
            depth.add_metric([kind], int(count))
            oldest.add_metric([kind], max(0.0, (now - first).total_seconds()) if first else 0.0)
        yield depth
        yield oldest
        stale = now - dt.timedelta(seconds=stale_after)
        stalled = (
            session.scalar(
                select(func.count()).where(
                    ExportRun.status == RunStatus.RUNNING,
                    ExportRun.worker.is_not(None),
                    ExportRun.heartbeat_at < stale,
                )
            )
            or 0
        )
        yield GaugeMetricFamily(
            "skuport_runs_stalled",
            "Running runs whose heartbeat stopped (about to be reaped).",
            value=int(stalled),
        )

    def _lag(self, session: Session, now: dt.datetime) -> Iterator[Any]:
        due = session.scalar(
            select(func.min(ExportJob.next_run_at)).where(
                ExportJob.active.is_(True), ExportJob.next_run_at <= now
            )
        )
        yield GaugeMetricFamily(
            "skuport_scheduler_lag_seconds",
            "How late the most overdue due tick is (0 when the schedulers keep up).",
            value=max(0.0, (now - due).total_seconds()) if due else 0.0,
        )


_REGISTRY = CollectorRegistry()
_REGISTRY.register(DatabaseCollector())


def render() -> bytes:
    """The Prometheus text exposition of every metric."""
    return bytes(generate_latest(_REGISTRY))


def readiness() -> dict[str, str]:
    """Database reachable and migrated to head; raises RuntimeError saying what is not ready."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from skuport.db import get_engine
    from skuport.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    with get_engine().connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    if current != head:
        raise RuntimeError(
            f"the database is at migration {current}, the code needs {head}: run 'skuport db upgrade'"
        )
    return {"status": "ready", "migration": str(current)}
