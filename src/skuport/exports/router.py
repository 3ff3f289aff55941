"""One-off export endpoints (seeds 003 and 004): create, poll, download, list, interrupt, delete.

Any authenticated user may export — viewers included, since an export only reads — and sees their
own exports; admins see everyone's.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials

from skuport.api import Deleted, ErrorEnvelope, SessionDep, api_router, error_responses
from skuport.auth.deps import CurrentUser, bearer, current_principal
from skuport.exporting.formats import FORMATS
from skuport.exports import service
from skuport.exports.models import ExportStatus
from skuport.exports.schemas import ExportCreate, ExportList, ExportRead

router = api_router(tags=["exports"])

FILE_TYPES = [
    *dict.fromkeys(f.content_type.split(";")[0] for f in FORMATS.values()),
    "application/gzip",
    "application/zip",
]
"""The media types a download can have: every registered format's, gzip, and zip (an export in parts)."""
DOWNLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    **error_responses(401),
    200: {
        "description": "The export file, as an attachment.",
        # application/octet-stream first: generated clients take the first type they know and read it as
        # bytes (a text/* one would be read as text); the file's own type is one of the others.
        "content": {
            media: {"schema": {"type": "string", "format": "binary"}}
            for media in ["application/octet-stream", *FILE_TYPES]
        },
    },
    403: {
        "model": ErrorEnvelope,
        "description": "Signed link tampered with (invalid_signature) or expired "
        "(signature_expired), or role not allowed",
    },
    409: {"model": ErrorEnvelope, "description": "The export is not completed (export_not_ready)"},
    410: {"model": ErrorEnvelope, "description": "The file expired and was removed (export_expired)"},
}


def _base(request: Request) -> str:
    return str(request.base_url)


@router.post("/exports", status_code=202, response_model=ExportRead, responses=error_responses(429))
def create_export(body: ExportCreate, request: Request, session: SessionDep, user: CurrentUser) -> ExportRead:
    """Start an export of the catalogue (or a filtered subset); poll it with GET /exports/{id}."""
    export = service.create_export(session, body=body, user=user)
    return service.to_read(export, base_url=_base(request))


@router.get("/exports", response_model=ExportList)
def list_exports(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    status: Annotated[ExportStatus | None, Query(description="Only exports in this status.")] = None,
    reference: Annotated[
        str | None, Query(max_length=255, description="Only exports with this reference.")
    ] = None,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ExportList:
    """Your exports (everyone's for admins), newest first."""
    rows, total = service.list_exports(
        session, user=user, status=status, reference=reference, offset=offset, limit=limit
    )
    base = _base(request)
    return ExportList(
        items=[service.to_read(e, base_url=base) for e in rows], total=total, offset=offset, limit=limit
    )


@router.get("/exports/{export_id}", response_model=ExportRead)
def get_export(export_id: str, request: Request, session: SessionDep, user: CurrentUser) -> ExportRead:
    """Status, progress and, once completed, the signed download URL of an export."""
    export = service.get_export(session, export_id=export_id, user=user)
    return service.to_read(export, base_url=_base(request))


@router.get(
    "/exports/{export_id}/download",
    response_class=Response,
    responses=DOWNLOAD_RESPONSES,
    # a bearer token, or none with a signed link's expires and signature
    openapi_extra={"security": [{"HTTPBearer": []}, {}]},
)
def download_export(
    export_id: str,
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    expires: Annotated[str | None, Query(description="Expiry of a signed link (from downloadUrl).")] = None,
    signature: Annotated[
        str | None, Query(description="Signature of a signed link (from downloadUrl).")
    ] = None,
) -> Response:
    """Download the file of a completed export, with a bearer token or through the signed downloadUrl."""
    signed = expires is not None or signature is not None
    user = None if signed else current_principal(request, session, credentials)
    download = service.open_download(
        session, export_id=export_id, user=user, expires=expires, signature=signature
    )
    return file_response(download)


def file_response(download: service.Download) -> Response:
    """The export file as an attachment, never cached (the vendor dialects send it the same way)."""
    headers = {"Cache-Control": "private, no-store"}
    if download.sha256:
        headers["X-Checksum-Sha256"] = download.sha256
    if download.path is not None:
        return FileResponse(
            download.path, media_type=download.media_type, filename=download.filename, headers=headers
        )
    assert download.chunks is not None
    headers["Content-Disposition"] = f'attachment; filename="{download.filename}"'
    if download.size is not None:
        headers["Content-Length"] = str(download.size)
    return StreamingResponse(download.chunks, media_type=download.media_type, headers=headers)


@router.post("/exports/{export_id}/interrupt", response_model=ExportRead)
def interrupt_export(export_id: str, request: Request, session: SessionDep, user: CurrentUser) -> ExportRead:
    """Stop a pending or running export (409 once it has finished)."""
    export = service.interrupt_export(session, export_id=export_id, user=user)
    return service.to_read(export, base_url=_base(request))


@router.delete("/exports/{export_id}", response_model=Deleted)
def delete_export(export_id: str, session: SessionDep, user: CurrentUser) -> Deleted:
    """Delete an export and its file (a running export is interrupted first)."""
    service.delete_export(session, export_id=export_id, user=user)
    return Deleted()
