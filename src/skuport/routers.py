"""Every API router, in the order they appear in the OpenAPI document."""

from __future__ import annotations

from fastapi import APIRouter

from skuport.auth.router import router as auth_router
from skuport.catalog.router import router as catalog_router
from skuport.exports.router import router as exports_router
from skuport.jobs.router import router as jobs_router
from skuport.records.router import router as records_router

ROUTERS: list[APIRouter] = [records_router, catalog_router, jobs_router, exports_router, auth_router]
