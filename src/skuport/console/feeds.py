"""Feeds (export jobs): the list by health, a job's page with its runs and charts, the job form, actions."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote, urlsplit

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from skuport.api import SessionDep
from skuport.auth.roles import JOB_WRITE
from skuport.catalog import service as catalog
from skuport.config import get_settings
from skuport.console import charts
from skuport.console.forms import (
    SELECTION_INPUTS,
    FormState,
    Input,
    destination_config,
    destination_inputs,
    headers_text,
    json_field,
    json_text,
    scope_value,
    selection_body,
    selection_context,
)
from skuport.console.web import PREFIX, CheckedForm, CurrentViewer, Form, redirect, render
from skuport.db import utcnow
from skuport.errors import NotFound, SkuportError
from skuport.exporting.destinations.base import MASK
from skuport.exporting.destinations.local import local_root
from skuport.jobs import service
from skuport.jobs.models import RunStatus
from skuport.jobs.schemas import JobCreate, JobRead, JobUpdate, RunRead
from skuport.scheduling.cron import describe, upcoming

router = APIRouter()

HEALTH_ORDER = {"failing": 0, "late": 1, "running": 2, "fine": 3, "paused": 4}
CHART_RUNS = 30
RUN_PAGE = 50
Search = Annotated[str | None, Query(max_length=200, description="Part of a job's name or id.")]
Status = Annotated[str | None, Query(max_length=20, description="failing, late, fine, active or paused.")]


def health(job: JobRead, now: dt.datetime) -> str:
    """failing (its last run failed), late (its next run is overdue), running, fine or paused."""
    if job.last_run is not None and job.last_run.status == RunStatus.FAILED:
        return "failing"
    if not job.active:
        return "paused"
    if job.last_run is not None and job.last_run.status == RunStatus.RUNNING:
        return "running"
    grace = dt.timedelta(seconds=2 * get_settings().scheduler_interval + 60)
    if job.next_run_at is not None and job.next_run_at < now - grace:
        return "late"
    return "fine"


def feeds(session: Session, now: dt.datetime) -> list[tuple[JobRead, str]]:
    """Every job with its health, failing first, then late, running, fine and paused; by name within."""
    rows = [
        (job, health(job, now)) for job in (service.job_read(session, j) for j in service.list_jobs(session))
    ]
    rows.sort(key=lambda row: (HEALTH_ORDER[row[1]], row[0].name.lower(), row[0].id))
    return rows


@router.get("/jobs")
def job_list(
    request: Request, session: SessionDep, viewer: CurrentViewer, q: Search = None, status: Status = None
) -> Response:
    """The feeds, failing first; search by name or id, filter by health or state."""
    rows = feeds(session, utcnow())
    if q:
        needle = q.lower()
        rows = [row for row in rows if needle in row[0].name.lower() or needle in row[0].id.lower()]
    if status in ("active", "paused"):
        rows = [row for row in rows if row[0].active == (status == "active")]
    elif status:
        rows = [row for row in rows if row[1] == status]
    return render(request, "jobs.html", {"rows": rows, "q": q or "", "status": status or ""}, viewer=viewer)


def _run_file(job: JobRead, run: RunRead) -> Path | None:
    """The delivered file of a local job's run, if it is still under the local root."""
    if job.destination_type != "local" or run.status != RunStatus.SUCCESS or not run.destination_path:
        return None
    url = urlsplit(run.destination_path)
    if url.scheme != "file":
        return None
    root = local_root()
    path = Path(unquote(url.path)).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path


def _runs_context(session: Session, job: JobRead, limit: int) -> dict[str, Any]:
    runs = [service.run_read(run) for run in service.list_runs(session, job_id=job.id, limit=limit)]
    files = {run.id for run in runs if _run_file(job, run) is not None}
    return {
        "job": job,
        "runs": runs,
        "files": files,
        "limit": limit,
        "live": any(run.status == RunStatus.RUNNING for run in runs),
    }


def _charts(runs: list[RunRead]) -> list[Any]:
    recent = list(reversed(runs[:CHART_RUNS]))

    def bars(metric: Any) -> list[charts.Bar]:
        return [
            charts.Bar(
                value=float(metric(run) or 0),
                label=f"{run.started_at:%Y-%m-%d %H:%M}",
                status=str(run.status),
            )
            for run in recent
        ]

    def seconds(run: RunRead) -> float:
        return (run.completed_at - run.started_at).total_seconds() if run.completed_at else 0.0

    from skuport.console.web import size

    return [
        charts.run_bars(
            bars(lambda r: r.record_count),
            title="Records",
            chart_id="chart-records",
            unit=lambda v: f"{int(v):,} records",
        ),
        charts.run_bars(
            bars(lambda r: r.file_size), title="File size", chart_id="chart-size", unit=lambda v: size(int(v))
        ),
        charts.run_bars(
            bars(seconds), title="Duration", chart_id="chart-duration", unit=lambda v: f"{v:.1f} s"
        ),
    ]


# -- the job form ---------------------------------------------------------------------------------
def _dimensions(session: Session) -> list[Any]:
    return list(catalog.list_dimensions(session))


def _form_context(
    session: Session, *, destination_type: str, state: FormState, job: JobRead | None
) -> dict[str, Any]:
    inputs = destination_inputs(destination_type)
    return {
        **selection_context(session),
        "state": state,
        "job": job,
        "destination_type": destination_type,
        "destination_types": service.destination_types(),
        "formats": service.known_formats(),
        "destination_inputs": inputs,
        "mask": MASK,
    }


JOB_INPUTS = frozenset(
    {
        "name",
        "description",
        "schedule",
        "timezone",
        "catalogId",
        "filenameTemplate",
        "delta",
        "active",
        "timeoutSeconds",
        "maxRecordsPerFile",
        "manifest",
        "notifications",
        "destinationType",
        "id",
    }
)


def _known_names(inputs: list[Input], dimensions: list[Any]) -> set[str]:
    names = set(JOB_INPUTS | SELECTION_INPUTS)
    names.update(item.name for item in inputs)
    names.update(f"dimensionScope.{dim.id}" for dim in dimensions)
    return names


def _job_values(job: JobRead) -> dict[str, Any]:
    """A job as its form shows it."""
    values: dict[str, Any] = {
        "name": job.name,
        "description": job.description or "",
        "format": job.format,
        "compress": job.compress,
        "schedule": job.schedule,
        "timezone": job.timezone,
        "schemaId": job.schema_id or "",
        "filenameTemplate": job.filename_template,
        "fields": ", ".join(job.fields or []),
        "includeVariants": job.include_variants,
        "delta": job.delta,
        "active": job.active,
        "timeoutSeconds": job.timeout_seconds or "",
        "maxRecordsPerFile": job.max_records_per_file or "",
        "manifest": job.manifest,
        "notifications": json_text(job.notifications or None),
        "filters": "" if not job.filters else json.dumps(job.filters, indent=2),
        "columns": json_text(
            [c.model_dump(by_alias=True, exclude_none=True) for c in job.columns or []] or None
        ),
        "csv": json_text(job.csv.model_dump(by_alias=True) if job.csv is not None else None),
        "headerLanguage": job.header_language or "",
        "globalOnly": job.dimension_scope == {},
        "dryData": job.dry_data,
        "valueLabels": job.value_labels,
        "includes": list(job.includes),
        "lifecycleStateIds": list(job.lifecycle_state_ids),
    }
    for dim, seg in (job.dimension_scope or {}).items():
        values[f"dimensionScope.{dim}"] = scope_value(seg)
    for key, value in job.destination_config.items():
        values[f"destinationConfig.{key}"] = headers_text(value) if isinstance(value, dict) else value
    return values


def _body(
    form: Form, session: Session, destination_type: str, state: FormState, *, job: JobRead | None
) -> dict[str, Any]:
    """The API body a submitted job form stands for."""
    timeout, per_file = form.text("timeoutSeconds"), form.text("maxRecordsPerFile")
    body: dict[str, Any] = {
        "name": form.text("name"),
        "description": form.text("description") or None,
        "destinationType": destination_type,
        "destinationConfig": destination_config(
            form, destination_type, state, stored=job.destination_config if job is not None else None
        ),
        **selection_body(form, _dimensions(session), state),
        "schedule": form.text("schedule"),
        "timezone": form.text("timezone") or "UTC",
        "delta": "delta" in form,
        "active": "active" in form,
        "timeoutSeconds": int(timeout) if timeout.isdigit() else (timeout or None),  # 0 is refused
        "maxRecordsPerFile": int(per_file) if per_file.isdigit() else (per_file or None),
        "manifest": "manifest" in form,
        "notifications": json_field(
            form,
            "notifications",
            state,
            shape=list,
            example='[{"events": ["run.failed"], "type": "email", "to": ["feeds@example.com"]}]',
        )
        or [],  # an empty textarea: none
    }
    template = form.text("filenameTemplate")
    if template:
        body["filenameTemplate"] = template
    return body


DestinationType = Annotated[str, Query(max_length=40, description="s3, azure-blob, sftp, webhook or local.")]


@router.get("/jobs/new")
def new_job(
    request: Request, session: SessionDep, viewer: CurrentViewer, type: DestinationType = "local"
) -> Response:
    """The form of a new job, for one destination type (switching the type reloads the form)."""
    viewer.need(JOB_WRITE)
    if type not in service.destination_types():
        type = "local"
    state = FormState(
        values={
            "format": "csv",
            "schedule": "0 2 * * *",
            "timezone": "UTC",
            "includeVariants": True,
            "active": True,
        }
    )
    for item in destination_inputs(type):
        if item.default not in (None, ""):
            state.values[item.name] = item.default
    return render(
        request,
        "job_form.html",
        _form_context(session, destination_type=type, state=state, job=None),
        viewer=viewer,
    )


def _submit(request: Request, session: Session, viewer: Any, form: Form, *, job: JobRead | None) -> Response:
    destination_type = form.text("destinationType") or "local"
    if destination_type not in service.destination_types():
        destination_type = "local"
    state = FormState(values={key: form.getlist(key)[-1] for key in form})
    for name in ("compress", "includeVariants", "delta", "active", "manifest"):
        state.values[name] = name in form
    body = _body(form, session, destination_type, state, job=job)
    context = _form_context(session, destination_type=destination_type, state=state, job=job)
    known = _known_names(context["destination_inputs"], context["dimensions"])
    if not state.errors:
        try:
            # the services validate the whole job before they change anything
            if job is None:
                saved = service.create_job(session, data=JobCreate.model_validate(body), user_id=viewer.id)
            else:
                saved = service.update_job(
                    session, job_id=job.id, data=JobUpdate.model_validate(body), user_id=viewer.id
                )
        except (SkuportError, ValidationError) as exc:
            if isinstance(exc, SkuportError) and exc.status_code not in (409, 422):
                raise
            state.absorb(exc, known)
        else:
            verb = "created" if job is None else "saved"
            return redirect(request, f"{PREFIX}/jobs/{saved.id}", f"Job '{saved.name}' {verb}.")
    state.message = state.message or "Please correct the fields marked below."
    return render(request, "job_form.html", context, viewer=viewer, status_code=422)


@router.post("/jobs/new")
def create_job(request: Request, session: SessionDep, viewer: CurrentViewer, form: CheckedForm) -> Response:
    """Create a job from the form; a refused one comes back with each error beside its field."""
    viewer.need(JOB_WRITE)
    return _submit(request, session, viewer, form, job=None)


@router.get("/jobs/{job_id}/edit")
def edit_job(job_id: str, request: Request, session: SessionDep, viewer: CurrentViewer) -> Response:
    """The form of an existing job (secrets are never sent to the browser: empty keeps them)."""
    viewer.need(JOB_WRITE)
    job = service.job_read(session, service.get_job(session, job_id=job_id))
    state = FormState(values=_job_values(job))
    return render(
        request,
        "job_form.html",
        _form_context(session, destination_type=job.destination_type, state=state, job=job),
        viewer=viewer,
    )


@router.post("/jobs/{job_id}/edit")
def save_job(
    job_id: str, request: Request, session: SessionDep, viewer: CurrentViewer, form: CheckedForm
) -> Response:
    """Save the edited job (the API's PUT: validated whole)."""
    viewer.need(JOB_WRITE)
    job = service.job_read(session, service.get_job(session, job_id=job_id))
    return _submit(request, session, viewer, form, job=job)


@router.get("/cron")
def cron_preview(
    request: Request,
    viewer: CurrentViewer,
    schedule: Annotated[str, Query(max_length=120)] = "",
    timezone: Annotated[str, Query(max_length=64)] = "UTC",
) -> Response:
    """A schedule in words and its next five runs in the job's time zone (the form asks as you type)."""
    from skuport.scheduling.cron import check_cron, check_timezone

    context: dict[str, Any] = {"schedule": schedule, "timezone": timezone}
    try:
        zone = check_timezone(timezone or "UTC")
        expr = check_cron(schedule)
        context.update(
            words=describe(expr), ticks=[t.astimezone(zone) for t in upcoming(expr, zone.key, utcnow())]
        )
    except SkuportError as exc:
        context["problem"] = exc.message
    return render(request, "_cron.html", context, viewer=viewer)


# -- actions --------------------------------------------------------------------------------------
@router.post("/jobs/{job_id}/pause")
def pause(
    job_id: str, request: Request, session: SessionDep, viewer: CurrentViewer, _form: CheckedForm
) -> Response:
    """Pause the job's schedule."""
    viewer.need(JOB_WRITE)
    job = service.pause_job(session, job_id=job_id, user_id=viewer.id)
    return redirect(
        request, f"{PREFIX}/jobs/{job_id}", f"Job '{job.name}' paused: no scheduled runs until resumed."
    )


@router.post("/jobs/{job_id}/resume")
def resume(
    job_id: str, request: Request, session: SessionDep, viewer: CurrentViewer, _form: CheckedForm
) -> Response:
    """Resume the job from its next cron match."""
    viewer.need(JOB_WRITE)
    job = service.resume_job(session, job_id=job_id, user_id=viewer.id)
    return redirect(request, f"{PREFIX}/jobs/{job_id}", f"Job '{job.name}' resumed.")


@router.post("/jobs/{job_id}/run")
def run_now(
    job_id: str, request: Request, session: SessionDep, viewer: CurrentViewer, _form: CheckedForm
) -> Response:
    """Start a run now."""
    viewer.need(JOB_WRITE)
    run = service.run_now(session, job_id=job_id)
    return redirect(request, f"{PREFIX}/jobs/{job_id}", f"Run {run.id} started.")


@router.post("/jobs/{job_id}/test")
def test_connection(
    job_id: str, request: Request, session: SessionDep, viewer: CurrentViewer, _form: CheckedForm
) -> Response:
    """Test the connection to the job's destination."""
    viewer.need(JOB_WRITE)
    result = service.test_destination(session, job_id=job_id)
    if result.ok:
        return redirect(
            request,
            f"{PREFIX}/jobs/{job_id}",
            f"Connection test passed in {result.duration_ms} ms ({result.destination_path}).",
        )
    return redirect(
        request, f"{PREFIX}/jobs/{job_id}", f"Connection test failed: {result.error}", kind="error"
    )


@router.get("/jobs/{job_id}/delete")
def confirm_delete(job_id: str, request: Request, session: SessionDep, viewer: CurrentViewer) -> Response:
    """Ask before deleting a job and its history."""
    viewer.need(JOB_WRITE)
    job = service.job_read(session, service.get_job(session, job_id=job_id))
    runs = len(service.list_runs(session, job_id=job_id, limit=1000))
    return render(request, "job_delete.html", {"job": job, "run_count": runs}, viewer=viewer)


@router.post("/jobs/{job_id}/delete")
def delete(
    job_id: str, request: Request, session: SessionDep, viewer: CurrentViewer, _form: CheckedForm
) -> Response:
    """Delete the job and its run history."""
    viewer.need(JOB_WRITE)
    job = service.get_job(session, job_id=job_id)
    name = job.name
    service.delete_job(session, job_id=job_id)
    return redirect(request, f"{PREFIX}/jobs", f"Job '{name}' and its run history deleted.")


# -- a job's page (after /jobs/new, which its path would also match) ------------------------
RunLimit = Annotated[int, Query(ge=1, le=1000, description="Runs to show.")]


@router.get("/jobs/{job_id}")
def job_page(
    job_id: str, request: Request, session: SessionDep, viewer: CurrentViewer, limit: RunLimit = RUN_PAGE
) -> Response:
    """A job: its configuration (secrets masked), actions, charts of its recent runs and its run history."""
    job = service.job_read(session, service.get_job(session, job_id=job_id))
    context = _runs_context(session, job, max(limit, CHART_RUNS))
    context["charts"] = _charts(context["runs"])
    context["runs"] = context["runs"][:limit]
    context["health"] = health(job, utcnow())
    context["upcoming"] = upcoming(job.schedule, job.timezone, utcnow()) if job.active else []
    return render(request, "job.html", context, viewer=viewer)


@router.get("/jobs/{job_id}/runs")
def job_runs(
    job_id: str,
    request: Request,
    session: SessionDep,
    viewer: CurrentViewer,
    limit: RunLimit = RUN_PAGE,
    live: Annotated[bool, Query(description="Polled while a run was running.")] = False,
) -> Response:
    """The run history table alone (htmx polls it while a run is running); when the last running run has
    ended, the whole page reloads once so its health, charts and next runs show the outcome too."""
    job = service.job_read(session, service.get_job(session, job_id=job_id))
    context = _runs_context(session, job, limit)
    response = render(request, "_runs.html", context, viewer=viewer)
    if live and not context["live"]:
        response.headers["HX-Refresh"] = "true"
    return response


@router.get("/jobs/{job_id}/runs/{run_id}/file")
def run_file(job_id: str, run_id: str, session: SessionDep, _viewer: CurrentViewer) -> Response:
    """Download the file a local job's run delivered (while it is still there)."""
    job = service.job_read(session, service.get_job(session, job_id=job_id))
    path = _run_file(job, service.run_read(service.get_run(session, job_id=job_id, run_id=run_id)))
    if path is None:
        raise NotFound(
            "This run's file is not on this server (any more): only successful runs of local "
            "jobs can be downloaded here."
        )
    return FileResponse(path, filename=path.name, headers={"Cache-Control": "private, no-store"})
