"""One-off exports: create, run on the executor, poll, download, interrupt, expire, delete.

API operations write through the request's session (which owns the transaction); an export is
queued on the executor inside that transaction, so it exists if and only if its row commits. The
task itself is in :mod:`skuport.exports.tasks`. The few writes a GET makes
(recording that an expired file was removed) and the background task's writes use short
transactions of their own.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import orjson
from sqlalchemy import false, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from skuport.api import iso_z
from skuport.auth.deps import Principal
from skuport.auth.models import User
from skuport.auth.roles import JOB_WRITE, RoleId
from skuport.auth.tokens import parse_ttl
from skuport.config import Settings, get_settings
from skuport.db import session_scope, utcnow
from skuport.errors import Conflict, Forbidden, SkuportError, TooManyRequests, ValidationFailed, not_found
from skuport.exporting.selection import stored_columns, stored_selection
from skuport.exports import signing
from skuport.exports.models import ACTIVE_STATUSES, Export, ExportStatus
from skuport.exports.schemas import ExportCreate, ExportProgress, ExportRead
from skuport.exports.storage import StorageError, get_storage
from skuport.exports.tasks import TASK_NAME
from skuport.jobs import notifications
from skuport.jobs.notifications import NotificationRead
from skuport.scheduling.executor import after_commit, enqueue
from skuport.scheduling.lifecycle import LIFECYCLE

if TYPE_CHECKING:
    from skuport.exporting.spec import ExportSpec

log = logging.getLogger(__name__)


class ExportExpired(SkuportError):
    """The export's file was removed after it expired."""

    status_code = 410
    code = "export_expired"


# --- helpers -----------------------------------------------------------------------------------


def _is_admin(user: Principal) -> bool:
    return RoleId.ADMIN in user.role_ids


def file_ttl(settings: Settings) -> dt.timedelta:
    """How long a completed export's file is kept (``SKUPORT_EXPORT_TTL``)."""
    return parse_ttl(settings.export_ttl)


def build_spec(export: Export) -> ExportSpec:
    """The pipeline's view of an export row: its selection, as the exports API took it."""
    return stored_selection(export).to_spec()


# --- API operations ------------------------------------------------------------------------------


def create_export(
    session: Session, *, body: ExportCreate, user: Principal, max_records: int | None = None
) -> Export:
    """Validate and record an export, and queue it on the executor in the request's transaction.

    ``max_records`` replaces ``SKUPORT_EXPORT_MAX_RECORDS`` (a vendor dialect's own limit); 0: none.
    """
    from skuport.exporting.pipeline import count_matching, validate_spec

    settings = get_settings()
    metadata_size = len(orjson.dumps(body.metadata))
    if metadata_size > settings.export_metadata_max_bytes:
        raise ValidationFailed(
            f"metadata is {metadata_size} bytes as JSON; the limit is {settings.export_metadata_max_bytes}.",
            code="metadata_too_large",
            details=[
                {"field": "metadata", "size": metadata_size, "limit": settings.export_metadata_max_bytes}
            ],
        )
    export = Export(
        id=_new_export_id(),
        user_id=user.id,
        status=ExportStatus.PENDING,
        resource_type=body.resource_type,
        **stored_columns(body),
        reference=body.reference,
        reference_origin=body.reference_origin,
        metadata_json=body.metadata,
        file_expired=False,
    )
    if body.notifications:
        if not user.has_any(JOB_WRITE):  # the server sends them: as for a job's, an editor's right
            raise Forbidden(
                "notifications: telling a webhook or a mailbox needs one of the roles: "
                f"{', '.join(JOB_WRITE)} (drop notifications to export as you are)."
            )
        notifications.check(body.notifications, events=notifications.EXPORT_EVENTS)
        export.notifications = notifications.stored(body.notifications, None)
    spec = build_spec(export)
    try:
        # an export in parts may split an xlsx sheet that overflows; one file may not
        validate_spec(session, spec, may_split=spec.max_records_per_file is not None)
        matching = count_matching(session, spec)
    except SkuportError:
        raise
    except (ValueError, KeyError, LookupError) as exc:
        raise ValidationFailed(f"The export request is not valid: {exc}", code="invalid_export") from exc
    if matching == 0:
        raise ValidationFailed(
            "No record matches this export: check schemaId, catalogId, lifecycleStateIds and filters "
            "(GET /records with the same filters shows what would be exported).",
            code="no_matching_records",
        )
    maximum = settings.export_max_records if max_records is None else max_records
    if maximum and matching > maximum:
        raise ValidationFailed(
            f"This export would hold {matching} records; the limit is {maximum}. Narrow it with filters, "
            "schemaId or catalogId, or use an export job.",
            code="too_many_records",
            details=[{"matching": matching, "limit": maximum}],
        )
    export.progress_total = matching
    # Touching the user's row takes its row lock (PostgreSQL; SQLite's writing request already holds
    # the database's write lock), so two concurrent requests of one user cannot both slip under the limit.
    session.execute(update(User).where(User.id == user.id).values(name=User.name))
    active = (
        session.scalar(
            select(func.count())
            .select_from(Export)
            .where(Export.user_id == user.id, Export.status.in_(ACTIVE_STATUSES))
        )
        or 0
    )
    limit = settings.export_max_active_per_user
    if limit and active >= limit:
        raise TooManyRequests(
            f"You already have {active} exports pending or in progress (limit {limit}); wait for one "
            "to finish or interrupt one with POST /exports/{id}/interrupt.",
            code="too_many_active_exports",
            details=[{"active": active, "limit": limit}],
        )
    export.heartbeat_at = utcnow()
    session.add(export)
    session.flush()
    enqueue(session, TASK_NAME, export.id)
    return export


def _new_export_id() -> str:
    from skuport.ids import new_id

    return new_id("exp")


def _find(session: Session, export_id: str) -> Export | None:
    """``session.get`` for an id from a URL; an id no row can have (NUL, too long) finds nothing."""
    if "\x00" in export_id or len(export_id) > 80:
        return None
    return session.get(Export, export_id)


def _visible(session: Session, *, export_id: str, user: Principal) -> Export:
    export = _find(session, export_id)
    if export is None or not (_is_admin(user) or export.user_id == user.id):
        raise not_found("Export", export_id)
    return export


def get_export(session: Session, *, export_id: str, user: Principal) -> Export:
    """An export the user may see (their own; admins see all); expired files are removed on access."""
    export = _visible(session, export_id=export_id, user=user)
    expire_if_due(export)
    return export


def list_exports(
    session: Session,
    *,
    user: Principal,
    status: ExportStatus | None = None,
    reference: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[Export], int]:
    """The user's exports (all for admins), newest first, with the total before paging."""
    query = select(Export)
    if not _is_admin(user):
        query = query.where(Export.user_id == user.id)
    if status is not None:
        query = query.where(Export.status == status)
    if reference is not None:
        # No reference holds NUL (refused on create); PostgreSQL would refuse to compare with it.
        query = query.where(Export.reference == reference if "\x00" not in reference else false())
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = list(
        session.scalars(
            query.order_by(Export.created_at.desc(), Export.id.desc()).offset(offset).limit(limit)
        )
    )
    for export in rows:
        expire_if_due(export)
    return rows, total


def interrupt_export(session: Session, *, export_id: str, user: Principal) -> Export:
    """Stop a pending or running export; the running pipeline is cancelled."""
    export = _visible(session, export_id=export_id, user=user)
    now = utcnow()
    result = session.execute(
        update(Export)
        .where(Export.id == export.id, Export.status.in_(ACTIVE_STATUSES))
        .values(status=ExportStatus.INTERRUPTED, interrupted_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    session.refresh(export)
    if getattr(result, "rowcount", 0) == 0:
        raise Conflict(
            f"Export '{export.id}' is {export.status}; only pending or in_progress exports "
            "can be interrupted.",
            code="export_not_interruptible",
            details=[{"status": export.status}],
        )
    # The local pipeline stops at its next batch; one on another worker at its next heartbeat.
    after_commit(session, lambda: LIFECYCLE.cancel(TASK_NAME, export_id, "interrupted"))
    return export


def delete_export(session: Session, *, export_id: str, user: Principal) -> None:
    """Remove the export's file and row (a running export is cancelled first)."""
    export = _visible(session, export_id=export_id, user=user)
    backend, key = export.storage_backend, export.storage_key
    session.delete(export)
    session.flush()

    def cleanup() -> None:
        LIFECYCLE.cancel(TASK_NAME, export_id, "gone")
        if backend and key:
            try:
                get_storage(backend).delete(key=key)
            except (StorageError, ValueError):
                log.warning("could not remove the file of deleted export %s", export_id, exc_info=True)

    after_commit(session, cleanup)


def _remove_file(export: Export) -> None:
    if export.storage_key and export.storage_backend:
        get_storage(export.storage_backend).delete(key=export.storage_key)


def expire_if_due(export: Export, *, now: dt.datetime | None = None) -> bool:
    """Remove the file of a completed export past its expiry and record that it is gone."""
    now = now or utcnow()
    if (
        export.status != ExportStatus.COMPLETED
        or export.file_expired
        or export.expires_at is None
        or export.expires_at > now
    ):
        return False
    try:
        _remove_file(export)
    except StorageError:
        log.warning("could not remove the expired file of export %s; will retry", export.id, exc_info=True)
        return False
    # A transaction of its own: GET requests read without the write lock, and a download answers 410
    # right after, which rolls the request's transaction back.
    with session_scope() as own:
        own.execute(update(Export).where(Export.id == export.id).values(file_expired=True, updated_at=now))
    set_committed_value(export, "file_expired", True)
    return True


# --- reading --------------------------------------------------------------------------------------


def download_url(
    export: Export, *, base_url: str, settings: Settings | None = None, now: dt.datetime | None = None
) -> str | None:
    """The signed URL that downloads the file without a token, while it is available."""
    settings = settings or get_settings()
    if export.status != ExportStatus.COMPLETED or export.file_expired or export.expires_at is None:
        return None
    until = export.expires_at
    if settings.export_url_ttl:
        until = min(until, (now or utcnow()) + parse_ttl(settings.export_url_ttl))
    expires, signature = signing.sign(settings, export_id=export.id, expires_at=until)
    query = urlencode({"expires": expires, "signature": signature})
    return f"{base_url.rstrip('/')}/api/v1/exports/{export.id}/download?{query}"


def to_read(export: Export, *, base_url: str) -> ExportRead:
    """The API view of an export."""
    return ExportRead(
        id=export.id,
        status=ExportStatus(export.status),
        resource_type=export.resource_type,
        format=export.format,
        filters=export.filters,
        fields=export.fields,
        includes=export.includes or [],
        schema_id=export.schema_id,
        catalog_id=export.catalog_id,
        include_variants=export.include_variants,
        lifecycle_state_ids=export.lifecycle_state_ids or [],
        dimension_scope=export.dimension_scope,
        header_language=export.header_language,
        compress=export.compress,
        dry_data=export.dry_data,
        value_labels=export.value_labels,
        csv=export.csv,
        columns=export.columns,
        max_records_per_file=export.max_records_per_file,
        manifest=export.manifest,
        notifications=notifications.shown(export.notifications) or [],
        notified=[NotificationRead.model_validate(n) for n in export.notified],
        reference=export.reference,
        reference_origin=export.reference_origin,
        metadata=export.metadata_json or {},
        progress=ExportProgress(done=export.progress_done, total=export.progress_total),
        record_count=export.record_count,
        file_size=export.file_size,
        sha256=export.sha256,
        content_type=export.content_type,
        filename=export.filename,
        download_url=download_url(export, base_url=base_url),
        expires_at=export.expires_at,
        file_expired=export.file_expired,
        errors_log=export.errors_log,
        created_by=export.user_id,
        created_at=export.created_at,
        updated_at=export.updated_at,
        started_at=export.started_at,
        completed_at=export.completed_at,
        failed_at=export.failed_at,
        interrupted_at=export.interrupted_at,
    )


@dataclass
class Download:
    """An export file ready to send."""

    filename: str
    media_type: str
    size: int | None
    sha256: str | None
    path: Path | None
    chunks: Iterator[bytes] | None


def open_download(
    session: Session,
    *,
    export_id: str,
    user: Principal | None,
    expires: str | None = None,
    signature: str | None = None,
) -> Download:
    """The file of a completed export, for its owner (or an admin) or for a valid signed URL."""
    if user is None:
        signing.verify(
            get_settings(), export_id=export_id, expires=expires, signature=signature, now=utcnow()
        )
        export = _find(session, export_id)
        if export is None:
            raise not_found("Export", export_id)
        owner = session.get(User, export.user_id)
        if owner is None or not owner.active:
            # A signed link acts for its owner: disabling the owner revokes the links they shared.
            raise Forbidden(
                "This download link's owner is disabled; the link no longer works.", code="link_revoked"
            )
    else:
        export = _visible(session, export_id=export_id, user=user)
    expire_if_due(export)
    if export.expires_at is not None and (export.file_expired or export.expires_at <= utcnow()):
        raise ExportExpired(
            f"The file of export '{export.id}' expired at {export.expires_at:%Y-%m-%dT%H:%M:%SZ} and was "
            "removed; create a new export.",
            details=[{"expiresAt": iso_z(export.expires_at)}],
        )
    if export.status != ExportStatus.COMPLETED or not export.storage_key or not export.storage_backend:
        raise Conflict(
            f"Export '{export.id}' is {export.status}; its file can be downloaded once it is completed.",
            code="export_not_ready",
            details=[{"status": export.status}],
        )
    storage = get_storage(export.storage_backend)
    try:
        path = storage.local_path(key=export.storage_key)
        chunks = None if path is not None else storage.stream(key=export.storage_key)
    except FileNotFoundError:
        path, chunks = None, None
    if path is None and chunks is None:
        raise ExportExpired(
            f"The file of export '{export.id}' is no longer in the export storage; create a new export.",
            code="export_file_missing",
        )
    return Download(
        filename=export.filename or f"{export.id}.{export.format}",
        media_type=export.content_type or "application/octet-stream",
        size=export.file_size,
        sha256=export.sha256,
        path=path,
        chunks=chunks,
    )
