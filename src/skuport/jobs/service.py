"""Export jobs: validation as a whole, CRUD, pause/resume, run now, run history, destination tests."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel
from pydantic_core import to_jsonable_python
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from skuport.catalog.models import Catalog, Schema
from skuport.catalog.service import dimension_scope_problems
from skuport.config import Settings, get_settings
from skuport.db import utcnow
from skuport.errors import Conflict, SkuportError, ValidationFailed, not_found
from skuport.exporting.destinations.base import MASK
from skuport.ids import check_client_id, new_id
from skuport.jobs import notifications
from skuport.jobs.models import ExportJob, ExportRun, RunStatus, RunTrigger
from skuport.jobs.notifications import NotificationRead
from skuport.jobs.schemas import (
    NULLABLE_FIELDS,
    READ_ONLY_FIELDS,
    DestinationTest,
    JobCreate,
    JobRead,
    JobUpdate,
    RunCreate,
    RunFile,
    RunProgress,
    RunRead,
    RunSummary,
)
from skuport.scheduling.cron import check_cron, check_timezone, describe, next_after
from skuport.scheduling.executor import after_commit, enqueue

JOB_PREFIX = "expjob"
RUN_PREFIX = "run"
DEFAULT_RUN_LIMIT = 50
MAX_RUN_LIMIT = 1000


# -- destination config: registry, secrets ---------------------------------------------------------
def destination_types() -> list[str]:
    """The destination types the registry knows."""
    from skuport.exporting.destinations import DESTINATIONS

    return sorted(DESTINATIONS)


def known_formats() -> list[str]:
    """The export formats the pipeline can write."""
    from skuport.exporting.formats import FORMATS

    return list(FORMATS)


def secret_fields(destination_type: str) -> frozenset[str]:
    """Names of the write-only fields of a destination type."""
    from skuport.exporting.destinations import secret_fields as fields

    return frozenset(fields(destination_type))


def decrypted_destination_config(job: ExportJob) -> dict[str, Any]:
    """The job's destination config with secrets decrypted (for delivery, never for answers)."""
    from skuport.secrets import decrypt_config

    return dict(decrypt_config(job.destination_type, job.destination_config or {}))


def secret_values(destination_type: str, config: Mapping[str, Any]) -> tuple[str, ...]:
    """Every secret string in a (decrypted) config, to scrub from messages."""
    names = {name.removesuffix(".*") for name in secret_fields(destination_type)}
    found: list[str] = []

    def walk(value: Any, secret: bool) -> None:
        if isinstance(value, Mapping):
            for key, inner in value.items():
                walk(inner, secret or key in names)
        elif isinstance(value, list):
            for inner in value:
                walk(inner, secret)
        elif secret and isinstance(value, str):
            found.append(value)

    walk(config, False)
    return tuple(found)


def _masked_config(job: ExportJob) -> dict[str, Any]:
    from skuport.secrets import mask_config

    return dict(mask_config(job.destination_type, job.destination_config or {}))


def _keep_masked_secrets(new: Any, old: Any, path: str = "destinationConfig") -> Any:
    """Write-only secrets: wherever the client sent the mask back, keep the stored value."""
    if isinstance(new, Mapping):
        old_map = old if isinstance(old, Mapping) else {}
        return {
            key: _keep_masked_secrets(value, old_map.get(key), f"{path}.{key}") for key, value in new.items()
        }
    if isinstance(new, list):
        old_list = old if isinstance(old, list) else []
        return [
            _keep_masked_secrets(v, old_list[i] if i < len(old_list) else None, f"{path}[{i}]")
            for i, v in enumerate(new)
        ]
    if isinstance(new, str) and MASK in new and new != MASK and isinstance(old, str):
        from skuport.secrets import mask_url

        if mask_url(old) == new:
            return old  # a secret URL sent back as shown: its credentials stay
    if new == MASK:
        if old is None or old == MASK:
            raise ValidationFailed(
                f"{path}: '{MASK}' stands for a stored secret, and none is stored here; "
                "send the secret itself.",
                details=[{"field": path, "message": "masked value without a stored secret"}],
            )
        return old
    return new


# -- validation --------------------------------------------------------------------------------
def _collect(errors: list[dict[str, Any]], messages: list[str], exc: SkuportError) -> None:
    messages.append(exc.message)
    errors.extend(exc.details or [{"field": "", "message": exc.message}])


def validate_job(session: Session, values: dict[str, Any]) -> dict[str, Any]:
    """Check a whole job (after a create or a merge); raise one 422 listing every problem."""
    from skuport.exporting.destinations import validate_config
    from skuport.exporting.destinations.filenames import validate_filename_template

    errors: list[dict[str, Any]] = []
    messages: list[str] = []
    checks: list[Callable[[], Any]] = []

    dtype = values["destination_type"]
    types = destination_types()
    if dtype not in types:
        raise ValidationFailed(
            f"destinationType: '{dtype}' is not a destination; use one of {', '.join(types)}.",
            details=[{"field": "destinationType", "message": "unknown destination type", "value": dtype}],
        )
    checks.append(lambda: validate_config(dtype, values["destination_config"]))
    checks.append(lambda: _check_format(values["format"]))
    checks.append(lambda: values.__setitem__("schedule", check_cron(values["schedule"])))
    checks.append(lambda: check_timezone(values["timezone"]))
    checks.append(lambda: _check_refs(session, values))
    checks.append(lambda: validate_filename_template(values["filename_template"]))
    checks.append(lambda: _check_fields(values.get("fields")))
    for check in checks:
        try:
            check()
        except SkuportError as exc:
            _collect(errors, messages, exc)
    if not errors:
        try:
            _check_spec(session, values)
        except SkuportError as exc:
            _collect(errors, messages, exc)
    if errors:
        raise ValidationFailed(
            messages[0]
            if len(messages) == 1
            else f"{messages[0]} (and {len(messages) - 1} more problem(s), see details)",
            details=errors,
        )
    return values


def _check_format(fmt: str) -> None:
    formats = known_formats()
    if fmt not in formats:
        raise ValidationFailed(
            f"format: '{fmt}' is not a format; use one of {', '.join(formats)}.",
            details=[{"field": "format", "message": "unknown format", "value": fmt}],
        )


def _check_fields(fields: list[str] | None) -> None:
    if fields is not None and not all(name.strip() for name in fields):
        raise ValidationFailed(
            "fields: column names must not be empty.", details=[{"field": "fields", "message": "empty name"}]
        )


def _check_refs(session: Session, values: Mapping[str, Any]) -> None:
    errors: list[dict[str, Any]] = []
    messages: list[str] = []
    schema_id = values.get("schema_id")
    if schema_id is not None and session.get(Schema, schema_id) is None:
        messages.append(f"schemaId: schema '{schema_id}' does not exist.")
        errors.append({"field": "schemaId", "message": "unknown schema", "value": schema_id})
    catalog_id = values.get("catalog_id")
    if catalog_id is not None and session.get(Catalog, catalog_id) is None:
        messages.append(f"catalogId: catalog '{catalog_id}' does not exist.")
        errors.append({"field": "catalogId", "message": "unknown catalog", "value": catalog_id})
    for message, detail in dimension_scope_problems(session, values.get("dimension_scope")):
        messages.append(message)
        errors.append(detail)
    if errors:
        raise ValidationFailed(messages[0], details=errors)


def _check_spec(session: Session, values: Mapping[str, Any]) -> None:
    """Filters and fields are checked by the pipeline, which knows the columns it writes."""
    from skuport.exporting.pipeline import validate_spec

    validate_spec(session, _spec(values), may_split=True)  # an xlsx sheet that overflows splits


def spec_of_job(job: ExportJob, *, changed_since: dt.datetime | None = None) -> Any:
    """The pipeline's view of a job (``changed_since``: the delta's start)."""
    return dataclasses.replace(_spec(_values(job)), changed_since=changed_since)


def _spec(values: Mapping[str, Any]) -> Any:
    from skuport.exporting.selection import stored_selection

    return stored_selection(values).to_spec()


def run_timeout(job: ExportJob, settings: Settings | None = None) -> int:
    """Seconds one run of ``job`` may take: the job's own timeout, else SKUPORT_RUN_TIMEOUT."""
    return job.timeout_seconds or max(1, (settings or get_settings()).run_timeout)


def default_filename_template(fmt: str, compress: bool) -> str:
    """``{jobId}-{datetime}.<ext>[.gz]``: unique per tick, stable across retries."""
    from skuport.exporting.formats import FORMATS

    ext = FORMATS[fmt].extension if fmt in FORMATS else fmt
    return "{jobId}-{datetime}." + ext + (".gz" if compress else "")


_JOB_FIELDS = (
    "name",
    "description",
    "destination_type",
    "destination_config",
    "format",
    "schema_id",
    "catalog_id",
    "dimension_scope",
    "schedule",
    "timezone",
    "include_variants",
    "compress",
    "filename_template",
    "filters",
    "fields",
    "delta",
    "active",
    "timeout_seconds",
    "lifecycle_state_ids",
    "includes",
    "header_language",
    "dry_data",
    "value_labels",
    "csv",
    "columns",
    "notifications",
    "max_records_per_file",
    "manifest",
)


def _values(job: ExportJob) -> dict[str, Any]:
    return {name: copy.deepcopy(getattr(job, name)) for name in _JOB_FIELDS}


def _apply(job: ExportJob, values: Mapping[str, Any]) -> None:
    from skuport.secrets import encrypt_config

    for name in _JOB_FIELDS:
        if name == "destination_config":
            job.destination_config = dict(encrypt_config(values["destination_type"], values[name]))
        elif isinstance(values[name], BaseModel | list):  # nested models (csv, columns): their JSON
            setattr(job, name, to_jsonable_python(values[name], by_alias=False, exclude_none=True))
        else:
            setattr(job, name, values[name])


# -- jobs ----------------------------------------------------------------------------------------
def get_job(session: Session, *, job_id: str) -> ExportJob:
    """The job or a 404."""
    job = session.get(ExportJob, job_id)
    if job is None:
        raise not_found("Export job", job_id)
    return job


_LIST_FILTERS = {
    "active": "active",
    "destinationType": "destination_type",
    "format": "format",
    "schemaId": "schema_id",
    "catalogId": "catalog_id",
    "timezone": "timezone",
}


def list_jobs(session: Session, *, filters: Mapping[str, Any] | None = None) -> list[ExportJob]:
    """Every job, oldest first, optionally filtered by ``{field: value}`` (active, destinationType…)."""
    query = select(ExportJob).order_by(ExportJob.created_at, ExportJob.id)
    for key, raw in (filters or {}).items():
        column = _LIST_FILTERS.get(key)
        if column is None:
            raise ValidationFailed(
                f"Unknown export-job filter '{key}'; use {', '.join(_LIST_FILTERS)}.",
                code="invalid_filter",
                details=[{"field": f"filter[{key}]"}],
            )
        ops = raw if isinstance(raw, Mapping) else {"eq": raw}
        for op, value in ops.items():
            col = getattr(ExportJob, column)
            if column == "active":
                value = [_bool(v, key) for v in _as_list(value)] if op == "in" else _bool(value, key)
            if op == "eq":
                query = query.where(col == value)
            elif op == "ne":
                query = query.where(col != value)
            elif op == "in":
                query = query.where(col.in_(_as_list(value)))
            else:
                raise ValidationFailed(
                    f"filter[{key}]: operator '{op}' is not supported here; use eq, ne or in.",
                    code="invalid_filter",
                    details=[{"field": f"filter[{key}][{op}]"}],
                )
    return list(session.scalars(query))


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    return [v for v in str(value).split(",") if v != ""]


def _bool(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise ValidationFailed(
        f"filter[{key}] must be true or false.", code="invalid_filter", details=[{"field": f"filter[{key}]"}]
    )


def _client_id(
    session: Session, model: type[ExportJob] | type[ExportRun], value: str, *, prefix: str, kind: str
) -> str:
    """A client-chosen id: 422 when malformed, 409 when already taken."""
    try:
        ident = check_client_id(value, prefix)
    except ValueError as exc:
        raise ValidationFailed(f"id: {exc}.", details=[{"field": "id", "message": str(exc)}]) from None
    if session.get(model, ident) is not None:
        raise Conflict(
            f"{kind} '{ident}' already exists.",
            code="already_exists",
            details=[{"field": "id", "value": ident}],
        )
    return ident


def create_job(
    session: Session, *, data: JobCreate, user_id: str | None, now: dt.datetime | None = None
) -> ExportJob:
    """Validate everything, then store the job (secrets encrypted) with its next run time."""
    now = now or utcnow()
    if data.id is not None:
        job_id = _client_id(session, ExportJob, data.id, prefix=JOB_PREFIX, kind="Export job")
    else:
        job_id = new_id(JOB_PREFIX)
    values = data.model_dump(exclude={"id"})
    if values["filename_template"] is None:
        values["filename_template"] = default_filename_template(values["format"], values["compress"])
    _reject_masks(values["destination_config"])
    validate_job(session, values)
    notifications.check(data.notifications)
    values["notifications"] = notifications.stored(data.notifications, None)
    job = ExportJob(id=job_id, created_at=now, updated_at=now, created_by=user_id, updated_by=user_id)
    _apply(job, values)
    job.next_run_at = next_after(job.schedule, job.timezone, now) if job.active else None
    session.add(job)
    session.flush()
    return job


def _reject_masks(config: Any) -> None:
    _keep_masked_secrets(config, None)


def update_job(
    session: Session, *, job_id: str, data: JobUpdate, user_id: str | None, now: dt.datetime | None = None
) -> ExportJob:
    """Replace the fields the body carries, validate the result as a whole, store it."""
    now = now or utcnow()
    job = get_job(session, job_id=job_id)
    sent = data.model_fields_set - READ_ONLY_FIELDS
    if "id" in data.model_fields_set and data.id not in (None, job_id):
        raise ValidationFailed(
            f"id: the body's id '{data.id}' does not match the path's '{job_id}'.",
            details=[{"field": "id", "message": "id mismatch"}],
        )
    values = _values(job)
    stored_config = decrypted_destination_config(job)
    values["destination_config"] = stored_config
    for name in sent:
        value = getattr(data, name)
        if value is None and name not in NULLABLE_FIELDS:
            field = JobUpdate.model_fields[name].alias or name
            raise ValidationFailed(f"{field} cannot be null.", details=[{"field": field, "message": "null"}])
        values[name] = value
    if "destination_config" in sent:
        same_type = values["destination_type"] == job.destination_type
        values["destination_config"] = _keep_masked_secrets(
            values["destination_config"], stored_config if same_type else None
        )
    validate_job(session, values)
    if "notifications" in sent:
        notifications.check(data.notifications or [])
        values["notifications"] = notifications.stored(data.notifications, job.notifications)
    was_active, old_schedule, old_tz = job.active, job.schedule, job.timezone
    _apply(job, values)
    job.updated_at = now
    job.updated_by = user_id
    if not job.active:
        job.next_run_at = None
    elif not was_active or job.schedule != old_schedule or job.timezone != old_tz or job.next_run_at is None:
        job.next_run_at = next_after(job.schedule, job.timezone, now)
    session.flush()
    return job


def delete_job(session: Session, *, job_id: str) -> None:
    """Delete the job and its whole run history; a run in progress here stops at once, elsewhere at
    its next heartbeat or fence check (it never delivers after the delete)."""
    from skuport.jobs.tasks import TASK_NAME
    from skuport.scheduling.lifecycle import LIFECYCLE

    job = get_job(session, job_id=job_id)
    # the job's row first, as a scheduler claiming its next run locks it (then inserts the run)
    session.execute(select(ExportJob.id).where(ExportJob.id == job_id).with_for_update(key_share=True))
    running = list(
        session.scalars(
            select(ExportRun.id).where(ExportRun.job_id == job_id, ExportRun.status == RunStatus.RUNNING)
        )
    )
    session.execute(delete(ExportRun).where(ExportRun.job_id == job_id))
    session.delete(job)
    session.flush()

    def cancel() -> None:
        for run_id in running:
            LIFECYCLE.cancel(TASK_NAME, run_id, "gone")

    after_commit(session, cancel)


def pause_job(
    session: Session, *, job_id: str, user_id: str | None, now: dt.datetime | None = None
) -> ExportJob:
    """Stop the schedule, keep the configuration; 409 when already paused."""
    job = get_job(session, job_id=job_id)
    if not job.active:
        raise Conflict(f"Export job '{job_id}' is already paused.", code="already_paused")
    job.active = False
    job.next_run_at = None
    job.updated_at = now or utcnow()
    job.updated_by = user_id
    session.flush()
    return job


def resume_job(
    session: Session, *, job_id: str, user_id: str | None, now: dt.datetime | None = None
) -> ExportJob:
    """Resume from the next cron match (missed ticks are not replayed); 409 when already active."""
    now = now or utcnow()
    job = get_job(session, job_id=job_id)
    if job.active:
        raise Conflict(f"Export job '{job_id}' is already active.", code="already_active")
    job.active = True
    job.next_run_at = next_after(job.schedule, job.timezone, now)
    job.updated_at = now
    job.updated_by = user_id
    session.flush()
    return job


def job_read(session: Session, job: ExportJob) -> JobRead:
    """The API view of a job: secrets masked, next run and schedule description added."""
    last = session.scalars(
        select(ExportRun)
        .where(ExportRun.job_id == job.id)
        .order_by(ExportRun.started_at.desc(), ExportRun.id.desc())
        .limit(1)
    ).first()
    return JobRead(
        id=job.id,
        name=job.name,
        description=job.description,
        destination_type=job.destination_type,
        destination_config=_masked_config(job),
        format=job.format,
        schema_id=job.schema_id,
        catalog_id=job.catalog_id,
        dimension_scope=job.dimension_scope,
        schedule=job.schedule,
        include_variants=job.include_variants,
        compress=job.compress,
        filename_template=job.filename_template,
        active=job.active,
        created_at=job.created_at,
        updated_at=job.updated_at,
        timezone=job.timezone,
        next_run_at=job.next_run_at,
        schedule_description=describe(job.schedule),
        filters=job.filters,
        fields=job.fields,
        delta=job.delta,
        timeout_seconds=job.timeout_seconds,
        created_by=job.created_by,
        updated_by=job.updated_by,
        last_run=RunSummary.model_validate(last) if last is not None else None,
        lifecycle_state_ids=list(job.lifecycle_state_ids or []),
        includes=list(job.includes or []),
        header_language=job.header_language,
        dry_data=job.dry_data,
        value_labels=job.value_labels,
        csv=job.csv,
        columns=job.columns,
        max_records_per_file=job.max_records_per_file,
        manifest=job.manifest,
        notifications=notifications.shown(job.notifications) or [],
    )


# -- runs ----------------------------------------------------------------------------------------
def run_read(run: ExportRun) -> RunRead:
    """The API view of a run; progress while it runs, and its final counts after success."""
    progress = None
    if run.status == RunStatus.RUNNING or (run.status == RunStatus.SUCCESS and run.progress_done is not None):
        progress = RunProgress(done=run.progress_done or 0, total=run.progress_total)
    return RunRead(
        id=run.id,
        job_id=run.job_id,
        status=RunStatus(run.status),
        started_at=run.started_at,
        completed_at=run.completed_at,
        record_count=run.record_count,
        file_size=run.file_size,
        destination_path=run.destination_path,
        files=[RunFile.model_validate(f) for f in run.files if "sha256" in f] if run.files else None,
        error=run.error,
        scheduled_for=run.scheduled_for,
        trigger=RunTrigger(run.trigger),
        attempt=run.attempt,
        progress=progress,
        notifications=[NotificationRead.model_validate(n) for n in run.notifications],
    )


def _check_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_RUN_LIMIT
    if limit < 1 or limit > MAX_RUN_LIMIT:
        raise ValidationFailed(
            f"limit must be between 1 and {MAX_RUN_LIMIT}.",
            details=[{"field": "limit", "message": "out of range", "value": limit}],
        )
    return limit


def list_runs(
    session: Session, *, job_id: str | None = None, status: str | None = None, limit: int | None = None
) -> list[ExportRun]:
    """Runs newest first, of one job or all, optionally by status."""
    limit = _check_limit(limit)
    query = select(ExportRun)
    if job_id is not None:
        get_job(session, job_id=job_id)
        query = query.where(ExportRun.job_id == job_id)
    if status is not None:
        statuses = [s for s in status.split(",") if s]
        valid = {s.value for s in RunStatus}
        bad = [s for s in statuses if s not in valid]
        if bad or not statuses:
            raise ValidationFailed(
                f"status must be one of {', '.join(sorted(valid))} (comma-separated).",
                details=[{"field": "status", "value": status}],
            )
        query = query.where(ExportRun.status.in_(statuses))
    query = query.order_by(ExportRun.started_at.desc(), ExportRun.scheduled_for.desc(), ExportRun.id.desc())
    return list(session.scalars(query.limit(limit)))


def get_run(session: Session, *, job_id: str, run_id: str) -> ExportRun:
    """One run of a job or a 404."""
    run = session.get(ExportRun, run_id)
    if run is None or run.job_id != job_id:
        raise not_found("Run", run_id)
    return run


def record_external_run(
    session: Session, *, job_id: str, data: RunCreate, now: dt.datetime | None = None
) -> ExportRun:
    """Store a run reported by an external runner (trigger ``external``)."""
    now = now or utcnow()
    get_job(session, job_id=job_id)
    if data.id is not None:
        run_id = _client_id(session, ExportRun, data.id, prefix=RUN_PREFIX, kind="Run")
    else:
        from skuport.jobs.scheduler import new_run_id

        run_id = new_run_id(data.started_at)
    completed = data.completed_at
    if data.status == RunStatus.RUNNING:
        if completed is not None:
            raise ValidationFailed(
                "completedAt must be null while the run is running.",
                details=[{"field": "completedAt", "message": "set on a running run"}],
            )
    elif completed is None:
        completed = now
    if completed is not None and completed < data.started_at:
        raise ValidationFailed(
            "completedAt is before startedAt.",
            details=[{"field": "completedAt", "message": "before startedAt"}],
        )
    run = ExportRun(
        id=run_id,
        job_id=job_id,
        status=data.status,
        trigger=RunTrigger.EXTERNAL,
        attempt=1,
        scheduled_for=data.scheduled_for or data.started_at,
        started_at=data.started_at,
        completed_at=completed,
        record_count=data.record_count,
        file_size=data.file_size,
        destination_path=data.destination_path,
        error=data.error,
        heartbeat_at=now if data.status == RunStatus.RUNNING else None,
        worker="external",
    )
    from sqlalchemy.exc import IntegrityError

    try:
        with session.begin_nested():
            session.add(run)
            session.flush()
    except IntegrityError:
        raise Conflict(
            "The job already has a running run, or a run for this scheduledFor; "
            "runs of one job never overlap.",
            code="run_conflict",
        ) from None
    return run


def run_now(session: Session, *, job_id: str, now: dt.datetime | None = None) -> ExportRun:
    """Start a manual run (paused jobs too); 409 while the job has a running run."""
    from skuport.jobs.scheduler import claim_run
    from skuport.jobs.tasks import TASK_NAME

    now = now or utcnow()
    job = get_job(session, job_id=job_id)
    claim = claim_run(
        session,
        job_id=job.id,
        timezone=job.timezone,
        scheduled_for=now,
        trigger=RunTrigger.MANUAL,
        now=now,
        record_skip=False,
    )
    if claim.run is None:
        running = session.scalar(
            select(ExportRun.id).where(ExportRun.job_id == job_id, ExportRun.status == RunStatus.RUNNING)
        )
        raise Conflict(
            f"Export job '{job_id}' is already running ({running}); runs of one job never overlap. "
            "Wait for it to finish.",
            code="already_running",
            details=[{"runId": running}] if running else [],
        )
    enqueue(session, TASK_NAME, claim.run.id)
    return claim.run


def test_destination(session: Session, *, job_id: str) -> DestinationTest:
    """Check the job's destination is reachable and writable, without exporting."""
    from skuport.exporting.destinations import get_destination

    job = get_job(session, job_id=job_id)
    config = decrypted_destination_config(job)
    started = time.monotonic()
    path: str | None = None
    error: str | None = None
    try:
        destination = get_destination(job.destination_type, config)
        try:
            from skuport.exporting.destinations.filenames import render_filename

            now = utcnow()
            path = destination.destination_path(
                render_filename(
                    job.filename_template,
                    scheduled_for=now,
                    tz=job.timezone,
                    job_id=job.id,
                    run_id=f"{RUN_PREFIX}-test",
                )
            )
        except SkuportError:
            path = None
        destination.test_connection()
    except SkuportError as exc:
        error = exc.message
    except Exception as exc:
        error = f"The connection test failed unexpectedly ({type(exc).__name__})."
    if error is not None:
        from skuport.secrets import redact

        error = redact(error, secret_values(job.destination_type, config))
    return DestinationTest(
        ok=error is None,
        destination_type=job.destination_type,
        destination_path=path,
        error=error,
        duration_ms=int((time.monotonic() - started) * 1000),
    )
