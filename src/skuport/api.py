"""Shared API pieces: camelCase models, timestamps, the error envelope and its OpenAPI entries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, PlainSerializer
from pydantic.alias_generators import to_camel
from sqlalchemy.orm import Session

from skuport.db import SAFE_METHODS, session_scope


def iso_z(value: dt.datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a Z, as the seeds show."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


Timestamp = Annotated[dt.datetime, PlainSerializer(iso_z, return_type=str, when_used="json")]


class CamelModel(BaseModel):
    """Base of every API schema: snake_case in Python, camelCase on the wire."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)


class StrictCamelModel(CamelModel):
    """An input schema that refuses unknown fields."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, from_attributes=True, extra="forbid"
    )


class ErrorBody(BaseModel):
    """What went wrong."""

    code: str = Field(examples=["not_found"])
    message: str = Field(examples=["Record 'ent-x' was not found."])
    details: list[Any] = Field(default_factory=list)


class ErrorEnvelope(BaseModel):
    """Every error response: ``{"error": {"code", "message", "details"}}``."""

    error: ErrorBody


_DESCRIPTIONS = {
    400: "Malformed request",
    401: "Missing, invalid or expired token",
    403: "Role not allowed",
    404: "Not found",
    409: "Conflict with the current state",
    413: "Request too large",
    422: "Validation failed",
    429: "Too many requests",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI response entries for the given error status codes."""
    return {code: {"model": ErrorEnvelope, "description": _DESCRIPTIONS[code]} for code in codes}


COMMON_ERRORS = error_responses(400, 401, 403, 404, 409, 413, 422, 429)


def api_router(**kwargs: Any) -> APIRouter:
    """An APIRouter whose operations declare the error envelope."""
    return APIRouter(responses=COMMON_ERRORS, **kwargs)


class Deleted(CamelModel):
    """Answer of a DELETE that reports what it did."""

    deleted: bool = True


def get_session(request: Request) -> Iterator[Session]:
    """FastAPI dependency: the request's session owns the transaction (read-only for GET)."""
    with session_scope(write=request.method not in SAFE_METHODS) as session:
        yield session


# scope="function": the transaction commits when the endpoint returns, before the response is sent, so
# a client never reads stale data after a 2xx and a failed commit can never follow a success answer.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
