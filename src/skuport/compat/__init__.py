"""Vendor dialects of the one-off export API (seeds 003 and 004).

Each dialect is a thin adapter over :mod:`skuport.exports.service`: it translates the vendor's request
into an :class:`~skuport.exports.schemas.ExportCreate` and the export back into the vendor's shape. The
selection, the files, the limits and the authorisation are the exports service's; nothing is decided here
that the native API decides differently. A client written for the vendor changes only its base URL and
token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import APIRouter
    from fastapi.responses import JSONResponse


def dialects() -> dict[str, APIRouter]:
    """Mount point of each dialect (the vendor's base URL with skuport's host in front) and its router."""
    from skuport.compat.commercelayer import router as commercelayer_router
    from skuport.compat.productsmanager import router as productsmanager_router

    return {
        "/compat/productsmanager/api/v1": productsmanager_router,
        "/compat/commercelayer/api": commercelayer_router,
    }


def error_shape(path: str) -> Callable[[int, str, dict[str, str] | None], JSONResponse] | None:
    """How errors the router answers itself (no such route, wrong method) look under ``path``."""
    if path.startswith("/compat/commercelayer/"):
        from skuport.compat.commercelayer import router_error

        return router_error
    return None
