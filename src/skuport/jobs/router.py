"""Export-job endpoints (seed 000) plus run now, destination test and the run history across jobs."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from skuport.api import FILTER_PARAMETER, Deleted, SessionDep, api_router, error_responses, query_objects
from skuport.auth.deps import CurrentUser, Principal, require_roles
from skuport.auth.roles import JOB_WRITE, RUN_RECORD
from skuport.jobs import service
from skuport.jobs.schemas import DestinationTest, JobCreate, JobRead, JobUpdate, RunCreate, RunRead
from skuport.records.filters import parse_query_filters

router = api_router(tags=["export jobs"])

JobWriter = Annotated[Principal, Depends(require_roles(*JOB_WRITE))]
RunRecorder = Annotated[Principal, Depends(require_roles(*RUN_RECORD))]
Limit = Annotated[
    int | None, Query(description="Maximum number of runs to return (default 50, at most 1000).")
]


@router.get(
    "/export-jobs",
    response_model=list[JobRead],
    openapi_extra=query_objects(FILTER_PARAMETER),
    responses=error_responses(422),
)
def list_export_jobs(request: Request, session: SessionDep, _user: CurrentUser) -> list[JobRead]:
    """List all export jobs; ``filter[active]=true``, ``filter[destinationType]=s3``… narrow the list."""
    filters = parse_query_filters(request.query_params.multi_items())
    return [service.job_read(session, job) for job in service.list_jobs(session, filters=filters)]


@router.post("/export-jobs", response_model=JobRead, status_code=201)
def create_export_job(body: JobCreate, session: SessionDep, user: JobWriter) -> JobRead:
    """Create a scheduled export job; everything is validated before it is accepted."""
    job = service.create_job(session, data=body, user_id=user.id)
    return service.job_read(session, job)


@router.get("/export-jobs/{job_id}", response_model=JobRead)
def get_export_job(job_id: str, session: SessionDep, _user: CurrentUser) -> JobRead:
    """Get an export job by id."""
    return service.job_read(session, service.get_job(session, job_id=job_id))


@router.put("/export-jobs/{job_id}", response_model=JobRead)
def update_export_job(job_id: str, body: JobUpdate, session: SessionDep, user: JobWriter) -> JobRead:
    """Update an export job: the fields sent replace the stored ones; the result is validated whole."""
    job = service.update_job(session, job_id=job_id, data=body, user_id=user.id)
    return service.job_read(session, job)


@router.delete("/export-jobs/{job_id}", response_model=Deleted)
def delete_export_job(job_id: str, session: SessionDep, _user: JobWriter) -> Deleted:
    """Delete an export job and all its run history."""
    service.delete_job(session, job_id=job_id)
    return Deleted()


@router.post("/export-jobs/{job_id}/pause", response_model=JobRead)
def pause_export_job(job_id: str, session: SessionDep, user: JobWriter) -> JobRead:
    """Pause an active job: the schedule stops, the configuration stays (409 if already paused)."""
    return service.job_read(session, service.pause_job(session, job_id=job_id, user_id=user.id))


@router.post("/export-jobs/{job_id}/resume", response_model=JobRead)
def resume_export_job(job_id: str, session: SessionDep, user: JobWriter) -> JobRead:
    """Resume a paused job from the next cron match (409 if already active)."""
    return service.job_read(session, service.resume_job(session, job_id=job_id, user_id=user.id))


@router.get("/export-jobs/{job_id}/runs", response_model=list[RunRead])
def list_job_runs(job_id: str, session: SessionDep, _user: CurrentUser, limit: Limit = None) -> list[RunRead]:
    """List a job's run history, most recent first."""
    return [service.run_read(run) for run in service.list_runs(session, job_id=job_id, limit=limit)]


@router.post("/export-jobs/{job_id}/runs", response_model=RunRead, status_code=201)
def record_job_run(job_id: str, body: RunCreate, session: SessionDep, _user: RunRecorder) -> RunRead:
    """Record a run reported by an external export runner (role-runner or role-admin)."""
    return service.run_read(service.record_external_run(session, job_id=job_id, data=body))


@router.get("/export-jobs/{job_id}/runs/{run_id}", response_model=RunRead)
def get_job_run(job_id: str, run_id: str, session: SessionDep, _user: CurrentUser) -> RunRead:
    """Get one run of a job (poll it after ``POST …/run``)."""
    return service.run_read(service.get_run(session, job_id=job_id, run_id=run_id))


@router.post("/export-jobs/{job_id}/run", response_model=RunRead, status_code=202)
def run_export_job_now(job_id: str, session: SessionDep, _user: JobWriter) -> RunRead:
    """Run the job now (202 with the running run); 409 while a run of the job is still going."""
    return service.run_read(service.run_now(session, job_id=job_id))


@router.post("/export-jobs/{job_id}/test", response_model=DestinationTest)
def test_export_job_destination(job_id: str, session: SessionDep, _user: JobWriter) -> DestinationTest:
    """Test the connection to the job's destination without exporting anything."""
    return service.test_destination(session, job_id=job_id)


@router.get("/runs", response_model=list[RunRead], responses=error_responses(404))
def list_all_runs(
    session: SessionDep,
    _user: CurrentUser,
    status: Annotated[
        str | None, Query(description="running, success, failed or skipped; comma-separated for several.")
    ] = None,
    job_id: Annotated[str | None, Query(alias="jobId", description="Only this job's runs.")] = None,
    limit: Limit = None,
) -> list[RunRead]:
    """Runs across all jobs, most recent first."""
    runs = service.list_runs(session, job_id=job_id, status=status, limit=limit)
    return [service.run_read(run) for run in runs]
