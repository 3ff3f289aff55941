"""Fixtures of the scheduling tests: jobs made through the service, a controllable clock, a fake worker."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from skuport.config import Settings, get_settings
from skuport.db import session_scope
from skuport.jobs.models import ExportJob, ExportRun, RunStatus
from skuport.jobs.schemas import JobCreate
from skuport.jobs.service import create_job
from skuport.scheduling.executor import after_commit


def make_job(*, now: dt.datetime, schedule: str = "0 * * * *", timezone: str = "UTC", **extra: Any) -> str:
    """Create an active local-destination job at ``now`` through the service; return its id."""
    data = JobCreate.model_validate(
        {
            "name": "test job",
            "destinationType": "local",
            "destinationConfig": {"path": "feeds"},
            "format": "csv",
            "schedule": schedule,
            "timezone": timezone,
            **extra,
        }
    )
    with session_scope() as session:
        return create_job(session, data=data, user_id=None, now=now).id


def runs(job_id: str) -> list[ExportRun]:
    """The job's runs, oldest scheduled time first."""
    with session_scope() as session:
        return list(
            session.query(ExportRun)
            .filter(ExportRun.job_id == job_id)
            .order_by(ExportRun.scheduled_for, ExportRun.attempt)
        )


def get_run(run_id: str) -> ExportRun:
    """The run as stored."""
    with session_scope() as session:
        run = session.get(ExportRun, run_id)
        assert run is not None
        return run


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> None:
    """Poll ``predicate`` until it holds; fail after ``timeout`` seconds saying what was awaited."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        time.sleep(0.05)


def job(job_id: str) -> ExportJob:
    """The job as stored."""
    with session_scope() as session:
        found = session.get(ExportJob, job_id)
        assert found is not None
        return found


def finish(run_id: str, status: RunStatus = RunStatus.SUCCESS, at: dt.datetime | None = None) -> None:
    """What a worker does at the end of a run."""
    with session_scope() as session:
        session.execute(
            update(ExportRun)
            .where(ExportRun.id == run_id)
            .values(status=status, completed_at=at or dt.datetime.now(dt.UTC))
        )


class Worker:
    """An executor that records what was queued (once committed) and, when asked, finishes runs at once."""

    def __init__(self, *, instant: bool = True) -> None:
        self.instant = instant
        self.submitted: list[str] = []

    def enqueue(self, session: Session, task_name: str, ident: str) -> None:
        """Record the run after the commit (as a real executor would start it)."""
        after_commit(session, lambda: self._queued(ident))

    def enqueue_many(self, session: Session, task_name: str, idents: list[str]) -> None:
        """Record each run after the commit."""
        for ident in idents:
            self.enqueue(session, task_name, ident)

    def _queued(self, run_id: str) -> None:
        self.submitted.append(run_id)
        if self.instant:
            finish(run_id)

    def shutdown(self, *, wait: bool) -> None:
        """Nothing runs in the background."""


@pytest.fixture
def settings(db: str) -> Settings:
    """Settings with the documented defaults that the tests' arithmetic relies on."""
    return get_settings().model_copy(
        update={
            "scheduler_catchup_grace": 3600,
            "run_stale_after": 90,
            "run_timeout": 600,
            "run_max_attempts": 3,
            "run_retry_backoff": 30,
        }
    )


@pytest.fixture
def local_root(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """SKUPORT_LOCAL_ROOT pointed at a temporary folder for this test."""
    monkeypatch.setenv("SKUPORT_LOCAL_ROOT", str(tmp_path / "local-root"))
    get_settings.cache_clear()
    yield tmp_path / "local-root"
    monkeypatch.undo()
    get_settings.cache_clear()


Clock = Callable[[], dt.datetime]
