"""Login and logout, the home page (feeds by health, runs per day) and the runs across jobs."""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections import defaultdict
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from skuport.api import SessionDep
from skuport.auth.logins import authenticate, end_expired_sessions, end_session, start_session
from skuport.config import get_settings
from skuport.console import charts
from skuport.console.feeds import feeds
from skuport.console.web import (
    LOGIN_CSRF_COOKIE,
    PREFIX,
    SESSION_COOKIE,
    CheckedForm,
    CurrentViewer,
    read_form,
    redirect,
    render,
    same_origin,
    set_cookie,
    sign,
    throttle,
    unsign,
)
from skuport.db import utcnow
from skuport.errors import SkuportError
from skuport.jobs import service as jobs
from skuport.jobs.models import ExportJob, ExportRun

router = APIRouter()
log = logging.getLogger("skuport.console")

Next = Annotated[str | None, Query(max_length=2000, description="Page to go to after logging in.")]
CHART_DAYS = 14


def _safe_next(target: str | None) -> str:
    """Only a console path: a login never redirects off-site (``//evil.example``, ``/\\evil``)."""
    if not target or not target.startswith(PREFIX) or target.startswith("//") or "\\" in target:
        return PREFIX
    return target


def _login_page(
    request: Request,
    *,
    next_path: str,
    error: str | None = None,
    username: str = "",
    status_code: int = 200,
    retry_after: int = 0,
) -> Response:
    token = secrets.token_urlsafe(32)
    response = render(
        request,
        "login.html",
        {"next": next_path, "error": error, "username": username, "csrf": token},
        status_code=status_code,
    )
    set_cookie(request, response, LOGIN_CSRF_COOKIE, sign("login", token), max_age=3600)
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


@router.get("/login")
def login_form(request: Request, next: Next = None) -> Response:
    """The login form."""
    return _login_page(request, next_path=_safe_next(next))


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the password; too many failures for a name or an address answer 429 for a while."""
    from starlette.concurrency import run_in_threadpool

    form = await read_form(request)
    next_path = _safe_next(form.text("next"))
    username = form.text("username")[:80]
    expected = unsign("login", request.cookies.get(LOGIN_CSRF_COOKIE))
    if (
        expected is None
        or not secrets.compare_digest(form.text("csrf"), expected)
        or not same_origin(request)
    ):
        return _login_page(
            request,
            next_path=next_path,
            username=username,
            status_code=403,
            error="The login form expired or was not sent from this site: please try again.",
        )
    settings = get_settings()
    client = request.client.host if request.client else "unknown"
    keys = [f"user:{username.lower()}", f"addr:{client}"]
    wait = throttle.retry_after(
        keys, limit=settings.console_login_attempts, window=settings.console_login_window
    )
    if wait:
        return _login_page(
            request,
            next_path=next_path,
            username=username,
            status_code=429,
            retry_after=wait,
            error=f"Too many failed logins: try again in {wait} seconds.",
        )
    token = await run_in_threadpool(_check, username, form.get("password") or "")
    if token is None:
        log.warning("console login refused for user %r from %s", username, client)
        throttle.failed(keys)
        return _login_page(
            request,
            next_path=next_path,
            username=username,
            status_code=401,
            error="Wrong user name or password.",
        )
    throttle.forget(keys[0])
    log.info("console login of %s from %s", username, client)
    response = RedirectResponse(next_path, status_code=303)
    set_cookie(
        request, response, SESSION_COOKIE, sign("session", token), max_age=settings.console_session_max
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=PREFIX)
    return response


def _check(username: str, password: str) -> str | None:
    """A new login's token when the password is right (expired logins are swept on the way)."""
    from skuport.db import session_scope

    settings = get_settings()
    with session_scope() as session:
        user = authenticate(session, user_id=username, password=str(password))
        if user is None:
            return None
        end_expired_sessions(
            session,
            idle=dt.timedelta(seconds=settings.console_session_idle),
            absolute=dt.timedelta(seconds=settings.console_session_max),
        )
        return start_session(session, user=user)


@router.post("/logout")
def logout(request: Request, session: SessionDep, viewer: CurrentViewer, _form: CheckedForm) -> Response:
    """End the login: the session row goes, so a copy of the cookie opens nothing either."""
    token = unsign("session", request.cookies.get(SESSION_COOKIE))
    if token:
        end_session(session, token=token)
    log.info("console logout of %s", viewer.id)
    response = redirect(request, f"{PREFIX}/login", "You are logged out.")
    response.delete_cookie(SESSION_COOKIE, path=PREFIX)
    return response


@router.get("")
def home(request: Request, session: SessionDep, viewer: CurrentViewer) -> Response:
    """Feeds by health, runs per day by status, and the latest failures: the morning check."""
    now = utcnow()
    rows = feeds(session, now)
    groups: dict[str, list[object]] = defaultdict(list)
    for job, state in rows:
        groups[state].append(job)
    today = now.astimezone(dt.UTC).date()
    days = [today - dt.timedelta(days=n) for n in range(CHART_DAYS - 1, -1, -1)]
    since = dt.datetime.combine(days[0], dt.time(), tzinfo=dt.UTC)
    counts: dict[dt.date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for started, status in session.execute(
        select(ExportRun.started_at, ExportRun.status).where(ExportRun.started_at >= since)
    ):
        counts[started.astimezone(dt.UTC).date()][status] += 1
    failures = jobs.list_runs(session, status="failed", limit=10)
    names = dict(session.execute(select(ExportJob.id, ExportJob.name)).tuples().all())
    return render(
        request,
        "home.html",
        {
            "groups": groups,
            "total": len(rows),
            "chart": charts.runs_per_day(counts, days, chart_id="chart-days"),
            "failures": [jobs.run_read(run) for run in failures],
            "names": names,
        },
        viewer=viewer,
    )


RunStatusFilter = Annotated[
    str | None, Query(max_length=60, description="running, success, failed or skipped.")
]


@router.get("/runs")
def runs(
    request: Request,
    session: SessionDep,
    viewer: CurrentViewer,
    status: RunStatusFilter = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """Recent runs across every job, newest first, by status."""
    problem = None
    try:
        found = jobs.list_runs(session, status=status or None, limit=limit)
    except SkuportError as exc:
        problem, found = exc.message, []
    names = dict(session.execute(select(ExportJob.id, ExportJob.name)).tuples().all())
    return render(
        request,
        "runs.html",
        {
            "runs": [jobs.run_read(run) for run in found],
            "names": names,
            "status": status or "",
            "problem": problem,
            "limit": limit,
        },
        viewer=viewer,
    )
