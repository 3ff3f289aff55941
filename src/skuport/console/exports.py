"""One-off exports: create, a live list, download, interrupt, delete (the exports service's own rules:
every user may export and sees their own exports, admins everyone's)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError

from skuport.api import SessionDep
from skuport.catalog import service as catalog
from skuport.console.forms import SELECTION_INPUTS, FormState, selection_body, selection_context
from skuport.console.web import PREFIX, CheckedForm, CurrentViewer, redirect, render
from skuport.errors import SkuportError
from skuport.exporting.selection import ExportFormat
from skuport.exports import service
from skuport.exports.models import ACTIVE_STATUSES
from skuport.exports.router import file_response
from skuport.exports.schemas import ExportCreate

router = APIRouter()
PAGE = 50
KNOWN = SELECTION_INPUTS | {"reference"}


def _context(request: Request, session: Any, viewer: Any, state: FormState, offset: int) -> dict[str, Any]:
    rows, total = service.list_exports(session, user=viewer.principal, offset=offset, limit=PAGE)
    base = str(request.base_url)
    items = [service.to_read(export, base_url=base) for export in rows]
    return {
        **selection_context(session),
        "exports": items,
        "total": total,
        "offset": offset,
        "page": PAGE,
        "state": state,
        "formats": [f.value for f in ExportFormat],
        "live": any(item.status in ACTIVE_STATUSES for item in items),
    }


Offset = Annotated[int, Query(ge=0, le=2**31 - 1)]


@router.get("/exports")
def export_list(request: Request, session: SessionDep, viewer: CurrentViewer, offset: Offset = 0) -> Response:
    """Your exports (everyone's for admins), newest first, with the form of a new one."""
    state = FormState(values={"format": "csv", "includeVariants": True})
    return render(request, "exports.html", _context(request, session, viewer, state, offset), viewer=viewer)


@router.get("/exports/table")
def export_table(
    request: Request, session: SessionDep, viewer: CurrentViewer, offset: Offset = 0
) -> Response:
    """The list alone (htmx polls it while an export is pending or running)."""
    return render(
        request, "_exports.html", _context(request, session, viewer, FormState(), offset), viewer=viewer
    )


@router.post("/exports")
def create_export(
    request: Request, session: SessionDep, viewer: CurrentViewer, form: CheckedForm
) -> Response:
    """Start a one-off export from the form; a refused one comes back with the errors beside the fields."""
    state = FormState(values={key: form.getlist(key)[-1] for key in form})
    dimensions = list(catalog.list_dimensions(session))
    body = {**selection_body(form, dimensions, state), "reference": form.text("reference") or None}
    if not state.errors:
        try:
            export = service.create_export(
                session, body=ExportCreate.model_validate(body), user=viewer.principal
            )
        except (SkuportError, ValidationError) as exc:
            if isinstance(exc, SkuportError) and exc.status_code not in (409, 422, 429):
                raise
            state.absorb(exc, KNOWN | {f"dimensionScope.{dim.id}" for dim in dimensions})
        else:
            return redirect(request, f"{PREFIX}/exports", f"Export {export.id} started.")
    state.message = state.message or "Please correct the fields marked below."
    return render(
        request, "exports.html", _context(request, session, viewer, state, 0), viewer=viewer, status_code=422
    )


@router.get("/exports/{export_id}/download")
def download(export_id: str, session: SessionDep, viewer: CurrentViewer) -> Response:
    """The export's file."""
    return file_response(service.open_download(session, export_id=export_id, user=viewer.principal))


@router.post("/exports/{export_id}/interrupt")
def interrupt(
    export_id: str, request: Request, session: SessionDep, viewer: CurrentViewer, _form: CheckedForm
) -> Response:
    """Stop a pending or running export."""
    service.interrupt_export(session, export_id=export_id, user=viewer.principal)
    return redirect(request, f"{PREFIX}/exports", f"Export {export_id} interrupted.")


@router.post("/exports/{export_id}/delete")
def delete(
    export_id: str, request: Request, session: SessionDep, viewer: CurrentViewer, _form: CheckedForm
) -> Response:
    """Delete an export and its file."""
    service.delete_export(session, export_id=export_id, user=viewer.principal)
    return redirect(request, f"{PREFIX}/exports", f"Export {export_id} deleted.")
