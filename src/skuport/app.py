"""The FastAPI application: routers, error envelope, health."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from skuport import __version__
from skuport.api import ErrorEnvelope, refuse_unknown_query
from skuport.auth.deps import CurrentUser
from skuport.console.web import error_page, is_console
from skuport.errors import SkuportError

log = logging.getLogger("skuport")

MAX_BODY_BYTES = 10 * 1024 * 1024
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


def _envelope(
    status: int,
    code: str,
    message: str,
    details: list[Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message, "details": details or []}},
        status_code=status,
        headers=headers,
    )


def _loc(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


async def _validation_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if is_console(request.url.path):
        return error_page(
            request,
            422,
            "The address holds a value this page does not take: "
            + "; ".join(f"{_loc(e.get('loc', ()))}: {e.get('msg', '')}" for e in errors[:5]),
        )
    if any(err.get("type") == "json_invalid" for err in errors):
        return _envelope(400, "invalid_json", "The request body is not valid JSON.")
    details = [
        {"field": _loc(err.get("loc", ())), "message": err.get("msg", ""), "type": err.get("type", "")}
        for err in errors
    ]
    first = details[0] if details else {"field": "", "message": "invalid"}
    return _envelope(
        422, "validation_error", f"Invalid request: {first['field']}: {first['message']}", details
    )


async def _skuport_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SkuportError)
    if is_console(request.url.path):
        return error_page(request, exc.status_code, exc.message, exc.details)
    return JSONResponse(exc.envelope(), status_code=exc.status_code)


def _allowed_methods(request: Request) -> list[str]:
    """Every method the OpenAPI document lists for this path (Starlette's Allow names one route's only)."""
    table: list[tuple[re.Pattern[str], set[str]]] | None = getattr(request.app.state, "allow_table", None)
    if table is None:
        table = []
        for path, operations in request.app.openapi()["paths"].items():
            pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path))
            table.append((re.compile(f"^{pattern}$"), {method.upper() for method in operations}))
        request.app.state.allow_table = table
    matches = [(route, found) for route, found in table if route.match(request.url.path)]
    # a literal path (/users/me) is the endpoint meant, not the template it also fits (/users/{id})
    literal = [found for route, found in matches if "[^/]+" not in route.pattern]
    methods: set[str] = set().union(*(literal or [found for _route, found in matches]))
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


async def _http_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if is_console(request.url.path):
        return error_page(
            request, exc.status_code, {404: "There is no such page."}.get(exc.status_code, str(exc.detail))
        )
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    headers = getattr(exc, "headers", None)
    details: list[Any] = []
    if exc.status_code == 405:
        allowed = _allowed_methods(request)
        headers = {**(headers or {}), "Allow": ", ".join(allowed)}
        message = f"{request.method} is not allowed here; this endpoint takes {', '.join(allowed)}."
        details = [{"allow": allowed}]
    else:
        message = {404: "No such endpoint."}.get(exc.status_code, str(exc.detail))
    from skuport.compat import error_shape

    shape = error_shape(request.url.path)  # a vendor dialect answers in its own error shape
    if shape is not None:
        return shape(exc.status_code, message, headers)
    return _envelope(exc.status_code, code, message, details, headers=headers)


async def _database_handler(request: Request, exc: Exception) -> Response:
    # PostgreSQL refuses NUL characters in text; anything else the driver refuses is our bug.
    if "NUL" in str(getattr(exc, "orig", exc)) or "\\x00" in str(exc):
        return _envelope(422, "invalid_characters", "Text may not contain NUL (\\u0000) characters.")
    return await _unexpected_handler(request, exc)


async def _unexpected_handler(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    if is_console(request.url.path):
        return error_page(request, 500, "Something went wrong on our side; it has been logged.")
    return _envelope(500, "internal_error", "Something went wrong on our side; it has been logged.")


def _early_error(scope: Scope, status: int, code: str, message: str) -> JSONResponse:
    """An error answered before routing, in the shape of the API the path belongs to."""
    from skuport.compat import error_shape

    shape = error_shape(scope.get("path", ""))
    return shape(status, message, None) if shape is not None else _envelope(status, code, message)


class BodyLimit:
    """Refuse request bodies over the limit with a 413 before they are read."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw = scope.get("raw_path", b"") + b"?" + scope.get("query_string", b"")
            if b"\x00" in raw or b"%00" in raw.lower() or "\x00" in scope.get("path", ""):
                response = _early_error(
                    scope, 400, "invalid_characters", "NUL characters are not allowed in URLs."
                )
                await response(scope, receive, send)
                return
            for name, value in scope.get("headers", []):
                if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                    response = _early_error(
                        scope, 413, "payload_too_large", f"The request body is over {self.limit} bytes."
                    )
                    await response(scope, receive, send)
                    return
            receive = self._counting(receive)
        await self.app(scope, receive, send)

    def _counting(self, receive: Receive) -> Receive:
        """``receive`` that refuses the body as soon as it passes the limit, however it is framed
        (chunked bodies carry no Content-Length): nothing past the limit is read into memory."""
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise StarletteHTTPException(413, f"The request body is over {self.limit} bytes.")
            return message

        return counted


@asynccontextmanager
async def _lifespan(_app: FastAPI) -> AsyncIterator[None]:
    """Start the embedded scheduler when configured; on shutdown never leave this process's runs running."""
    from starlette.concurrency import run_in_threadpool

    from skuport.background import exit_on_next_signal, start_background, stop_background

    background = start_background()
    try:
        yield
    finally:
        exit_on_next_signal()  # the drain below can take the grace: a second signal ends it
        await run_in_threadpool(stop_background, background)


def create_app() -> FastAPI:
    """Build the application with every router mounted."""
    from skuport.routers import ROUTERS

    app = FastAPI(
        lifespan=_lifespan,
        dependencies=[Depends(refuse_unknown_query)],
        title="skuport",
        version=__version__,
        description="Product information with dimension-scoped values and export automation.",
    )
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(SkuportError, _skuport_handler)
    app.add_exception_handler(StarletteHTTPException, _http_handler)
    app.add_exception_handler(DBAPIError, _database_handler)
    app.add_exception_handler(Exception, _unexpected_handler)
    app.add_middleware(BodyLimit)

    @app.get("/healthz", tags=["health"], responses={})
    def healthz() -> dict[str, str]:
        """Liveness and database reachability."""
        from sqlalchemy import text

        from skuport.db import get_engine

        with get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
        return {"status": "ok", "version": __version__}

    @app.get("/readyz", tags=["health"], responses={503: {"model": ErrorEnvelope}})
    def readyz() -> Any:
        """Ready to serve: the database answers and its migrations are current (503 saying why if not)."""
        from skuport.metrics import readiness

        try:
            return readiness()
        except Exception as exc:
            message = (
                str(exc)
                if isinstance(exc, RuntimeError)
                else f"the database did not answer ({type(exc).__name__})"
            )
            return _envelope(503, "not_ready", message)

    @app.get(
        "/metrics",
        tags=["health"],
        response_class=Response,
        responses={
            200: {
                "content": {"text/plain": {"schema": {"type": "string"}}},
                "description": "Prometheus text format",
            },
            401: {"model": ErrorEnvelope, "description": "No or an invalid bearer token"},
        },
    )
    def metrics(_user: CurrentUser) -> Response:
        """Prometheus metrics of the whole fleet, computed from the database (any role's bearer token)."""
        from skuport.metrics import CONTENT_TYPE, render

        return Response(render(), media_type=CONTENT_TYPE)

    for router in ROUTERS:
        app.include_router(router, prefix="/api/v1")
    from skuport.compat import dialects

    for prefix, router in dialects().items():
        app.include_router(router, prefix=prefix)
    from skuport import console

    console.install(app)
    return app
