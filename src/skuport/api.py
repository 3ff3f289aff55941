"""Shared API pieces: camelCase models, timestamps, the error envelope and its OpenAPI entries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, Strict
from pydantic.alias_generators import to_camel
from sqlalchemy.orm import Session

from skuport.db import SAFE_METHODS, session_scope
from skuport.errors import BadRequest


def iso_z(value: dt.datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a Z, as the seeds show."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


Flag = Annotated[bool, Strict()]
"""A boolean of an input body: true or false only (0, 1, "yes" are refused, never read as a flag)."""

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


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    """``dependant`` and every dependency below it."""
    yield dependant
    for sub in dependant.dependencies:
        yield from _dependants(sub)


def _calls(dependant: Dependant) -> Iterator[Any]:
    return (sub.call for sub in _dependants(dependant))


class DeclaredErrorsRoute(APIRoute):
    """A route that declares in the OpenAPI document the errors it can answer, worked out from itself.

    400 always (unknown query parameter, malformed body); 401 where a token is read; 403 behind a role
    gate and on writes (a service may refuse a role); 404 where the path names something; 409 on writes;
    413 and 422 where there is a body or parameters to validate; 429 only where a
    route declares it. What a route declares itself stays.
    """

    error_model: Any = None
    """The model of the error responses (the envelope unless a subclass says otherwise)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        from fastapi.dependencies.utils import get_dependant

        from skuport.auth.deps import current_principal

        dependant = get_dependant(path=path, call=endpoint)
        calls = list(_calls(dependant))  # the endpoint and every dependency below it
        for extra in kwargs.get("dependencies") or ():
            calls.extend(_calls(get_dependant(path=path, call=extra.dependency)))
        methods = {m.upper() for m in kwargs.get("methods") or ("GET",)}
        writes = bool(methods - {"GET", "HEAD"})
        has_body = bool(dependant.body_params)
        codes = {400}
        if current_principal in calls:
            codes.add(401)
        if writes or any("require_roles" in getattr(call, "__qualname__", "") for call in calls):
            codes.add(403)
        if dependant.path_params:
            codes.add(404)
        if writes:
            codes.add(409)
        if has_body:
            codes.add(413)
        if has_body or dependant.path_params or dependant.query_params:
            codes.add(422)
        model = self.error_model or ErrorEnvelope
        responses = {code: {"model": model, "description": _DESCRIPTIONS[code]} for code in sorted(codes)}
        responses.update(kwargs.get("responses") or {})
        kwargs["responses"] = responses
        super().__init__(path, endpoint, **kwargs)


def api_router(**kwargs: Any) -> APIRouter:
    """An APIRouter whose operations declare the errors they can answer (:class:`DeclaredErrorsRoute`)."""
    return APIRouter(route_class=DeclaredErrorsRoute, **kwargs)


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


FILTER_PARAMETER: dict[str, Any] = {
    "name": "filter",
    "in": "query",
    "required": False,
    "style": "deepObject",
    "explode": True,
    "description": "Filters: filter[brand]=Ma Marque, filter[price][gte]=100 "
    "(operators eq, ne, in, gt, gte, lt, lte, contains, exists).",
    "schema": {"type": "object", "additionalProperties": True},
}
"""The ``filter[...]`` query object, as OpenAPI describes a deep object so that clients can send it."""


def query_objects(*parameters: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` of an operation taking deep-object query parameters (``filter[brand]=…``).

    What is declared here is also what :func:`refuse_unknown_query` lets through.
    """
    return {"parameters": list(parameters)}


def _query_names(route: APIRoute) -> tuple[frozenset[str], tuple[str, ...]]:
    """The query parameters a route takes: plain names, and the prefixes of its deep objects (``filter[``).

    Worked out once per route and kept on it (routes are not hashable).
    """
    known: tuple[frozenset[str], tuple[str, ...]] | None = getattr(route, "_skuport_query_names", None)
    if known is not None:
        return known

    declared = [p for p in (route.openapi_extra or {}).get("parameters", []) if p.get("in") == "query"]
    prefixes = tuple(f"{p['name']}[" for p in declared if p.get("style") == "deepObject")
    names = {param.alias for sub in _dependants(route.dependant) for param in sub.query_params}
    known = frozenset(names | {p["name"] for p in declared}), prefixes
    route._skuport_query_names = known  # type: ignore[attr-defined]
    return known


def refuse_unknown_query(request: Request) -> None:
    """App-wide dependency: a query parameter the operation does not take is a 400 naming it.

    A typo (``?brnd=…``, ``?filters[brand]=…``) must never be ignored and widen a selection to the whole
    catalogue.
    """
    route = request.scope.get("route")
    if not request.query_params or not isinstance(route, APIRoute):
        return
    names, prefixes = _query_names(route)
    unknown = sorted(
        {
            key
            for key in request.query_params
            if key not in names and not (prefixes and key.startswith(prefixes))
        }
    )
    if unknown:
        takes = sorted(names) + [f"{prefix}…]" for prefix in prefixes]
        raise BadRequest(
            f"Unknown query parameter{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}. This operation "
            f"takes {', '.join(takes) if takes else 'none'}.",
            code="unknown_parameter",
            details=[{"parameter": key} for key in unknown],
        )
