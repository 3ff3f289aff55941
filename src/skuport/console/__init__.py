"""The web console at ``/console``: server-rendered pages on the same services and roles as the API."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from skuport.console.web import HERE, PREFIX, LoginRequired, login_redirect


def install(app: FastAPI) -> None:
    """Mount the console's pages and its static files (stylesheet, vendored htmx) on ``app``."""
    from skuport.console import exports, feeds, pages, records

    for part in (pages.router, feeds.router, exports.router, records.router):
        app.include_router(part, prefix=PREFIX, include_in_schema=False)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="console-static")
    app.add_exception_handler(LoginRequired, login_redirect)
