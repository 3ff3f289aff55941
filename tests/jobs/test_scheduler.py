"""The scheduler against a real database with a controllable clock.

Promises (DESIGN "Scheduling promises"): one run per tick however many schedulers run; DST in the
job's zone; pause/resume and catch-up; no overlap; worker-lost retries and timeouts.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import pytest
from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError

from skuport.config import Settings
from skuport.db import get_engine, session_scope
from skuport.jobs.models import ExportRun, RunStatus, RunTrigger
from skuport.jobs.scheduler import Scheduler, claim_run
from skuport.jobs.service import pause_job, resume_job
from tests.jobs.conftest import Worker, finish, job, make_job, runs

UTC = dt.UTC


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def minutes(n: int) -> dt.timedelta:
    return dt.timedelta(minutes=n)


def test_a_due_tick_becomes_one_running_run_submitted_to_the_executor(settings: Settings) -> None:
    job_id = make_job(now=at(2026, 3, 8, 9, 30), schedule="0 10 * * *")
    assert job(job_id).next_run_at == at(2026, 3, 8, 10)
    worker = Worker(instant=False)
    scheduler = Scheduler(executor=worker, settings=settings)
    assert scheduler.tick(at(2026, 3, 8, 9, 59, 59)).started == []
    report = scheduler.tick(at(2026, 3, 8, 10, 0, 2))
    (run,) = runs(job_id)
    assert report.started == [run.id] == worker.submitted
    assert (run.status, run.trigger, run.attempt) == ("running", "schedule", 1)
    assert run.scheduled_for == at(2026, 3, 8, 10)
    assert run.id.startswith("run-20260308-100000-")
    assert job(job_id).next_run_at == at(2026, 3, 9, 10)
    # the same instant again changes nothing
    assert scheduler.tick(at(2026, 3, 8, 10, 0, 3)).started == []
    assert len(runs(job_id)) == 1


def test_two_schedulers_one_run_per_tick(settings: Settings) -> None:
    job_id = make_job(now=at(2026, 3, 8, 9, 59), schedule="* * * * *")
    first, second = Worker(), Worker()
    a = Scheduler(executor=first, settings=settings)
    b = Scheduler(executor=second, settings=settings)
    for minute in range(10):
        now = at(2026, 3, 8, 10, minute, 1)
        a.tick(now)
        b.tick(now)
    done = runs(job_id)
    assert [r.scheduled_for for r in done] == [at(2026, 3, 8, 10, m) for m in range(10)]
    assert all(r.status == "success" for r in done)
    assert len(first.submitted) + len(second.submitted) == 10
    assert set(first.submitted).isdisjoint(second.submitted)


def test_the_unique_row_decides_even_when_both_schedulers_see_the_tick_as_due(settings: Settings) -> None:
    job_id = make_job(now=at(2026, 3, 8, 9, 59), schedule="0 10 * * *")
    tick = at(2026, 3, 8, 10)
    with session_scope() as one:
        winner = claim_run(
            one, job_id=job_id, timezone="UTC", scheduled_for=tick, trigger=RunTrigger.SCHEDULE, now=tick
        )
        assert winner.run is not None
    with session_scope() as two:
        loser = claim_run(
            two, job_id=job_id, timezone="UTC", scheduled_for=tick, trigger=RunTrigger.SCHEDULE, now=tick
        )
        assert loser.run is None
    # and the constraint is in the database itself, not in the code path
    with pytest.raises(IntegrityError), get_engine().begin() as conn:
        conn.execute(
            insert(ExportRun).values(
                id="run-dup",
                job_id=job_id,
                status="success",
                trigger="schedule",
                attempt=1,
                scheduled_for=tick,
                started_at=tick,
            )
        )
    assert len(runs(job_id)) == 1


def test_two_schedulers_in_threads_race_for_every_tick(settings: Settings) -> None:
    # many jobs, two scheduler threads released together at each instant: every tick exactly once
    jobs = [make_job(now=at(2026, 3, 8, 9, 59), schedule="* * * * *") for _ in range(4)]
    workers = [Worker(), Worker()]
    schedulers = [Scheduler(executor=w, settings=settings) for i, w in enumerate(workers)]
    ticks = [at(2026, 3, 8, 10, m, 1) for m in range(8)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def loop(scheduler: Scheduler) -> None:
        try:
            for now in ticks:
                barrier.wait(timeout=30)
                scheduler.tick(now)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=loop, args=(s,)) for s in schedulers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    for job_id in jobs:
        done = runs(job_id)
        assert [r.scheduled_for for r in done] == [at(2026, 3, 8, 10, m) for m in range(8)], job_id
        assert {r.status for r in done} == {"success"}
    submitted = workers[0].submitted + workers[1].submitted
    assert len(submitted) == len(set(submitted)) == 4 * 8


def test_overlap_records_a_skipped_run(settings: Settings) -> None:
    job_id = make_job(now=at(2026, 3, 8, 9, 59, 30), schedule="* * * * *")
    worker = Worker(instant=False)
    scheduler = Scheduler(executor=worker, settings=settings)
    scheduler.tick(at(2026, 3, 8, 10, 0, 1))
    report = scheduler.tick(at(2026, 3, 8, 10, 1, 1))  # the 10:00 run is still going
    first, skipped = runs(job_id)
    assert first.status == "running"
    assert report.skipped == [skipped.id] and worker.submitted == [first.id]
    assert (skipped.status, skipped.scheduled_for, skipped.trigger) == (
        "skipped",
        at(2026, 3, 8, 10, 1),
        "schedule",
    )
    assert skipped.completed_at is not None
    assert skipped.error is not None and first.id in skipped.error and "still running" in skipped.error
    finish(first.id)
    scheduler.tick(at(2026, 3, 8, 10, 2, 1))
    assert [r.status for r in runs(job_id)] == ["success", "skipped", "running"]


def test_pause_stops_and_resume_continues_from_the_next_match(settings: Settings) -> None:
    job_id = make_job(now=at(2026, 3, 8, 10, 30), schedule="0 * * * *")
    worker = Worker()
    scheduler = Scheduler(executor=worker, settings=settings)
    with session_scope() as session:
        pause_job(session, job_id=job_id, user_id=None, now=at(2026, 3, 8, 10, 45))
    for hour in range(11, 15):
        scheduler.tick(at(2026, 3, 8, hour, 0, 5))
    assert runs(job_id) == []
    with session_scope() as session:
        resumed = resume_job(session, job_id=job_id, user_id=None, now=at(2026, 3, 8, 14, 20))
        assert resumed.next_run_at == at(2026, 3, 8, 15)
    # no burst of the missed 11:00-14:00 ticks
    assert scheduler.tick(at(2026, 3, 8, 14, 20, 5)).started == []
    assert scheduler.tick(at(2026, 3, 8, 15, 0, 5)).started != []
    assert [r.scheduled_for for r in runs(job_id)] == [at(2026, 3, 8, 15)]


def test_catch_up_runs_only_the_latest_missed_tick(settings: Settings) -> None:
    job_id = make_job(now=at(2026, 3, 8, 9, 30), schedule="0 * * * *")
    scheduler = Scheduler(executor=Worker(), settings=settings)
    # down from before 10:00 until 13:20: 10, 11, 12 and 13 were missed
    report = scheduler.tick(at(2026, 3, 8, 13, 20))
    (run,) = runs(job_id)
    assert report.started == [run.id]
    assert run.scheduled_for == at(2026, 3, 8, 13)
    assert job(job_id).next_run_at == at(2026, 3, 8, 14)


def test_no_catch_up_past_the_grace_period(settings: Settings) -> None:
    job_id = make_job(now=at(2026, 3, 8, 9, 30), schedule="0 * * * *")
    short = settings.model_copy(update={"scheduler_catchup_grace": 600})
    report = Scheduler(executor=Worker(), settings=short).tick(at(2026, 3, 8, 13, 20))
    assert runs(job_id) == []
    assert report.missed == [job_id]
    assert job(job_id).next_run_at == at(2026, 3, 8, 14)


@pytest.mark.parametrize(
    ("tz", "expr", "start", "end", "expected_utc"),
    [
        ("Europe/Copenhagen", "30 2 * * *", at(2026, 3, 28, 20), at(2026, 3, 29, 6), [at(2026, 3, 29, 1)]),
        (
            "Europe/Copenhagen",
            "30 2 * * *",
            at(2026, 10, 24, 20),
            at(2026, 10, 25, 6),
            [at(2026, 10, 25, 0, 30)],
        ),
        ("America/New_York", "30 2 * * *", at(2026, 3, 8, 3), at(2026, 3, 8, 12), [at(2026, 3, 8, 7)]),
        ("America/New_York", "30 1 * * *", at(2026, 11, 1, 2), at(2026, 11, 1, 10), [at(2026, 11, 1, 5, 30)]),
        (
            "Europe/Copenhagen",
            "0 * * * *",
            at(2026, 10, 24, 23, 30),
            at(2026, 10, 25, 2, 30),
            [at(2026, 10, 25, 0), at(2026, 10, 25, 1), at(2026, 10, 25, 2)],
        ),
    ],
)
def test_dst_days_fire_once_per_tick(
    settings: Settings,
    tz: str,
    expr: str,
    start: dt.datetime,
    end: dt.datetime,
    expected_utc: list[dt.datetime],
) -> None:
    # a scheduler ticking every 5 minutes through a spring-forward or fall-back night
    job_id = make_job(now=start, schedule=expr, timezone=tz)
    scheduler = Scheduler(executor=Worker(), settings=settings)
    now = start
    while now <= end:
        scheduler.tick(now)
        now += minutes(5)
    assert [r.scheduled_for for r in runs(job_id)] == expected_utc


def test_a_killed_run_is_failed_as_worker_lost_and_retried_with_backoff(settings: Settings) -> None:
    job_id = make_job(now=at(2026, 3, 8, 9, 59), schedule="0 10 * * *")
    worker = Worker(instant=False)
    scheduler = Scheduler(executor=worker, settings=settings)
    scheduler.tick(at(2026, 3, 8, 10, 0, 0))
    (first,) = runs(job_id)
    # the worker dies: no heartbeat after 10:00:00
    assert scheduler.tick(at(2026, 3, 8, 10, 1, 29)).reaped == []
    assert scheduler.tick(at(2026, 3, 8, 10, 1, 31)).reaped == [first.id]
    (first,) = runs(job_id)
    assert first.status == "failed" and first.error is not None and first.error.startswith("worker lost")
    assert first.retry_at == at(2026, 3, 8, 10, 2, 1)  # 30 s backoff
    assert scheduler.tick(at(2026, 3, 8, 10, 1, 59)).retried == []
    retried = scheduler.tick(at(2026, 3, 8, 10, 2, 2)).retried
    first, second = runs(job_id)
    assert retried == [second.id] and worker.submitted == [first.id, second.id]
    assert (second.trigger, second.attempt, second.status) == ("retry", 2, "running")
    assert second.scheduled_for == first.scheduled_for  # same tick: same file name, same delivery
    assert second.retry_of == first.id and first.retry_at is None
    # the retry dies too: backoff doubles; the third attempt is the last
    scheduler.tick(at(2026, 3, 8, 10, 3, 33))
    second = runs(job_id)[1]
    assert second.status == "failed" and second.retry_at == at(2026, 3, 8, 10, 4, 33)
    scheduler.tick(at(2026, 3, 8, 10, 4, 34))
    third = runs(job_id)[2]
    assert (third.attempt, third.retry_of) == (3, first.id)
    scheduler.tick(at(2026, 3, 8, 10, 6, 5))
    third = runs(job_id)[2]
    assert third.status == "failed" and third.retry_at is None
    scheduler.tick(at(2026, 3, 8, 11))
    assert len(runs(job_id)) == 3


def test_a_heartbeating_run_is_left_alone(settings: Settings) -> None:
    job_id = make_job(now=at(2026, 3, 8, 9, 59), schedule="0 10 * * *")
    scheduler = Scheduler(executor=Worker(instant=False), settings=settings)
    scheduler.tick(at(2026, 3, 8, 10))
    (run,) = runs(job_id)
    for second in range(60, 600, 60):
        now = at(2026, 3, 8, 10) + dt.timedelta(seconds=second)
        with session_scope() as session:
            session.execute(update(ExportRun).where(ExportRun.id == run.id).values(heartbeat_at=now))
        assert scheduler.tick(now + dt.timedelta(seconds=30)).reaped == []
    assert runs(job_id)[0].status == "running"


def test_a_run_past_its_deadline_times_out(settings: Settings) -> None:
    job_id = make_job(now=at(2026, 3, 8, 9, 59), schedule="0 10 * * *")
    scheduler = Scheduler(executor=Worker(instant=False), settings=settings)
    scheduler.tick(at(2026, 3, 8, 10))
    (run,) = runs(job_id)
    with session_scope() as session:  # started, heartbeating, with a 600 s deadline
        session.execute(
            update(ExportRun)
            .where(ExportRun.id == run.id)
            .values(deadline_at=at(2026, 3, 8, 10, 10), heartbeat_at=at(2026, 3, 8, 10, 10, 30))
        )
    assert scheduler.tick(at(2026, 3, 8, 10, 10, 31)).reaped == [run.id]
    (run,) = runs(job_id)
    assert run.status == "failed" and run.error is not None and run.retry_at is None
    assert run.error.startswith("timed out after 600 s")


def test_a_paused_job_s_pending_retry_runs_once_it_is_resumed(settings: Settings) -> None:
    job_id = make_job(now=at(2026, 3, 8, 9, 59), schedule="0 10 * * *")
    worker = Worker(instant=False)
    scheduler = Scheduler(executor=worker, settings=settings)
    scheduler.tick(at(2026, 3, 8, 10))
    scheduler.tick(at(2026, 3, 8, 10, 2))  # reaped: "retrying at 10:02:30"
    with session_scope() as session:
        pause_job(session, job_id=job_id, user_id=None, now=at(2026, 3, 8, 10, 2))
    # while paused the retry waits (it is not dropped)
    assert scheduler.tick(at(2026, 3, 8, 10, 5)).retried == []
    (run,) = runs(job_id)
    assert run.status == RunStatus.FAILED and run.retry_at == at(2026, 3, 8, 10, 2, 30)
    with session_scope() as session:
        resume_job(session, job_id=job_id, user_id=None, now=at(2026, 3, 8, 10, 6))
    retried = scheduler.tick(at(2026, 3, 8, 10, 6)).retried
    assert len(retried) == 1 and worker.submitted[-1] == retried[0]
    assert [(r.trigger, r.attempt) for r in runs(job_id)] == [("schedule", 1), ("retry", 2)]


def test_a_retry_waits_while_the_job_is_busy(settings: Settings) -> None:
    job_id = make_job(now=at(2026, 3, 8, 9, 59), schedule="0 10 * * *")
    scheduler = Scheduler(executor=Worker(instant=False), settings=settings)
    scheduler.tick(at(2026, 3, 8, 10))
    scheduler.tick(at(2026, 3, 8, 10, 2))  # reaped, retry due 10:02:30
    with session_scope() as session:  # meanwhile somebody pressed "run now"
        manual = claim_run(
            session,
            job_id=job_id,
            timezone="UTC",
            scheduled_for=at(2026, 3, 8, 10, 2, 10),
            trigger=RunTrigger.MANUAL,
            now=at(2026, 3, 8, 10, 2, 10),
            record_skip=False,
        )
        assert manual.run is not None
        manual_id = manual.run.id
    assert scheduler.tick(at(2026, 3, 8, 10, 2, 40)).retried == []
    finish(manual_id)
    assert len(scheduler.tick(at(2026, 3, 8, 10, 2, 50)).retried) == 1


class SlowWorker(Worker):
    """Holds each batch's transaction (and its row locks) a moment, as a busy database would."""

    def enqueue_many(self, session: Any, task_name: str, idents: list[str]) -> None:
        time.sleep(0.05)
        super().enqueue_many(session, task_name, idents)


def test_schedulers_running_at_once_share_a_pass_in_disjoint_batches(settings: Settings) -> None:
    if get_engine().dialect.name != "postgresql":
        pytest.skip(
            "FOR UPDATE SKIP LOCKED is PostgreSQL's (SQLite has one writer): the PostgreSQL pass runs it"
        )
    jobs = [make_job(now=at(2026, 3, 8, 9, 59), schedule="* * * * *") for _ in range(120)]
    batched = settings.model_copy(update={"scheduler_batch_size": 10})
    workers = [SlowWorker(instant=False), SlowWorker(instant=False)]
    schedulers = [Scheduler(executor=w, settings=batched) for w in workers]
    reports: list[Any] = [None, None]
    go = threading.Barrier(2)
    fought: list[int] = []
    for scheduler in schedulers:
        settle = scheduler._settle

        def counted(conflicts: Any, now: Any, report: Any, settle: Any = settle) -> None:
            fought.append(len(conflicts))
            settle(conflicts, now, report)

        scheduler._settle = counted  # type: ignore[method-assign]

    def tick(i: int) -> None:
        go.wait()
        reports[i] = schedulers[i].schedule_due(at(2026, 3, 8, 10, 0, 1))

    threads = [threading.Thread(target=tick, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    started = [run_id for report in reports for run_id in report.started]
    assert len(started) == len(set(started)) == 120  # every job's tick once
    assert all(report.started for report in reports)  # both took batches: the pass was shared
    assert not any(report.skipped for report in reports) and sum(fought) == 0  # no batch fought over
    assert sorted(started) == sorted(r.id for job_id in jobs for r in runs(job_id))


def test_run_now_and_a_locked_batch_never_deadlock(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    if get_engine().dialect.name != "postgresql":
        pytest.skip("row locks of a batch are PostgreSQL's: the PostgreSQL pass runs it")
    from skuport.errors import Conflict
    from skuport.jobs import scheduler as scheduling
    from skuport.jobs.service import run_now

    busy = make_job(now=at(2026, 3, 8, 9, 59), schedule="* * * * *")
    holding, release = threading.Event(), threading.Event()
    real = scheduling.latest_at_or_before

    def held(*args: Any) -> Any:  # the batch has locked its jobs and not yet inserted their runs
        holding.set()
        release.wait(10)
        return real(*args)

    monkeypatch.setattr(scheduling, "latest_at_or_before", held)
    monkeypatch.setattr("skuport.jobs.service.enqueue", lambda *args: None)  # the test runs nothing
    worker = Worker(instant=False)
    scheduler = Scheduler(executor=worker, settings=settings.model_copy(update={"scheduler_batch_size": 10}))
    errors: list[BaseException] = []

    def tick() -> None:
        try:
            scheduler.schedule_due(at(2026, 3, 8, 10, 0, 1))
        except BaseException as exc:
            errors.append(exc)

    pass_ = threading.Thread(target=tick)
    pass_.start()
    assert holding.wait(10)
    outcome: list[Any] = []

    def manual() -> None:
        try:
            with session_scope() as session:
                outcome.append(run_now(session, job_id=busy).id)
        except Exception as exc:  # a deadlock would surface here (or in the pass)
            outcome.append(exc)

    clicker = threading.Thread(target=manual)
    clicker.start()
    clicker.join(3)  # a run's foreign key check does not wait for the batch's lock
    release.set()
    pass_.join(15)
    clicker.join(15)
    assert errors == [] and len(outcome) == 1 and not isinstance(outcome[0], Exception), (errors, outcome)
    failures = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert failures == []  # the batch was not aborted (a deadlock) and redone job by job
    by_trigger = {r.trigger: r for r in runs(busy)}
    assert by_trigger["manual"].id == outcome[0]  # the click won: the tick is recorded as skipped
    assert by_trigger["schedule"].status == RunStatus.SKIPPED and not isinstance(outcome[0], Conflict)
