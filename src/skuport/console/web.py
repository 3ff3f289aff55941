"""The console's plumbing: templates, the login cookie, CSRF, the login throttle, flash notes, error pages.

Pages are rendered on the server from Jinja2 templates (autoescaped). Every page needs a live login
(a server-side session named by a signed HttpOnly SameSite=Lax cookie); every POST needs the login's
CSRF token, as a form field or, from htmx, the ``X-CSRF-Token`` header. Roles are the API's.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, Signer

from skuport import __version__
from skuport.api import SessionDep, iso_z
from skuport.auth.deps import Principal
from skuport.auth.logins import resume_session, touch_session
from skuport.auth.roles import JOB_WRITE
from skuport.config import Settings, get_settings
from skuport.db import session_scope, utcnow
from skuport.errors import Forbidden, SkuportError

PREFIX = "/console"
SESSION_COOKIE = "skuport_session"
LOGIN_CSRF_COOKIE = "skuport_login_csrf"
FLASH_COOKIE = "skuport_flash"
MAX_FORM_FIELDS = 1000
NOTHING = "\N{EN DASH}"
"""What a table shows for no value."""

SECURITY_HEADERS = {
    # scripts and styles only from the console's own static files; no framing, no foreign form targets
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")


class LoginRequired(Exception):
    """The request needs a live login: the handler redirects to the login page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def _signer(purpose: str, settings: Settings | None = None) -> Signer:
    keys = (settings or get_settings()).secret_keys  # newest first; itsdangerous signs with the last
    return Signer(list(reversed(keys)), salt=f"skuport.console.{purpose}")


def sign(purpose: str, value: str) -> str:
    """``value`` with an HMAC of the server's secret key, for a cookie."""
    return _signer(purpose).sign(value).decode()


def unsign(purpose: str, signed: str | None) -> str | None:
    """The value of a signed cookie, or None when it is missing or tampered with."""
    if not signed:
        return None
    try:
        return _signer(purpose).unsign(signed).decode()
    except (BadSignature, UnicodeDecodeError):
        return None


def set_cookie(request: Request, response: Response, name: str, value: str, *, max_age: int | None) -> None:
    """A console cookie: HttpOnly, SameSite=Lax, Secure when the console is served over HTTPS."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=PREFIX,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


@dataclass(frozen=True)
class Viewer:
    """The logged-in console user of a request."""

    principal: Principal
    name: str
    csrf_token: str

    @property
    def id(self) -> str:
        """The user id."""
        return self.principal.id

    def can(self, roles: Iterable[str]) -> bool:
        """Whether the user holds one of ``roles`` (templates hide what they may not do)."""
        return self.principal.has_any(roles)

    def need(self, roles: Iterable[str]) -> None:
        """Refuse the action unless the user holds one of ``roles`` (the API's own role tuples)."""
        roles = tuple(roles)
        if not self.can(roles):
            raise Forbidden(f"This action needs one of the roles: {', '.join(roles)}.")


def _next_path(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def console_user(request: Request, session: SessionDep) -> Viewer:
    """The live login of this request, or a redirect to the login page."""
    settings = get_settings()
    token = unsign("session", request.cookies.get(SESSION_COOKIE))
    login = None
    if token is not None:
        login = resume_session(
            session,
            token=token,
            idle=dt.timedelta(seconds=settings.console_session_idle),
            absolute=dt.timedelta(seconds=settings.console_session_max),
        )
    if token is None or login is None:
        raise LoginRequired(_next_path(request) if request.method == "GET" else PREFIX)
    if login.needs_touch():
        with session_scope() as writer:  # the page's own session may be read-only
            touch_session(writer, token=token)
    principal = Principal(id=login.user.id, role_ids=frozenset(login.user.role_ids or []))
    request.state.principal = principal
    viewer = Viewer(principal=principal, name=login.user.name, csrf_token=login.csrf_token)
    request.state.viewer = viewer  # an error page keeps the navigation
    return viewer


CurrentViewer = Annotated[Viewer, Depends(console_user)]


class Form(dict[str, Any]):
    """A submitted form: one string per field (``getlist`` for repeated fields)."""

    def __init__(self, items: list[tuple[str, Any]]) -> None:
        super().__init__()
        self._items = items
        for key, value in items:
            if isinstance(value, str):
                self.setdefault(key, value)

    def getlist(self, key: str) -> list[str]:
        """Every value sent under ``key``, in order."""
        return [value for name, value in self._items if name == key and isinstance(value, str)]

    def text(self, key: str) -> str:
        """The field's value, stripped ('' when missing)."""
        return str(self.get(key, "")).strip()


async def read_form(request: Request) -> Form:
    """The request's form, parsed once, with bounded fields."""
    form = await request.form(max_fields=MAX_FORM_FIELDS, max_files=0)
    return Form(list(form.multi_items()))


def _csrf_matches(expected: str, request: Request, form: Form) -> bool:
    sent = request.headers.get("x-csrf-token") or form.get("csrf") or ""
    return bool(expected) and secrets.compare_digest(str(sent), expected)


async def checked_form(request: Request, viewer: CurrentViewer) -> Form:
    """The form of a POST by a logged-in user, after its CSRF token and origin are checked (403 if not)."""
    form = await read_form(request)
    if not _csrf_matches(viewer.csrf_token, request, form) or not same_origin(request):
        raise Forbidden(
            "The form's security token is missing or out of date: reload the page and try again.",
            code="csrf_failed",
        )
    return form


CheckedForm = Annotated[Form, Depends(checked_form)]


def same_origin(request: Request) -> bool:
    """Whether the browser says the request comes from this site (an Origin header, when sent, must match)."""
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    parts = urlsplit(origin)
    return f"{parts.scheme}://{parts.netloc}" == f"{request.url.scheme}://{request.url.netloc}"


class LoginThrottle:
    """Failed logins per user name and per client address in a sliding window (this process's memory:
    each API replica counts its own, so N replicas allow N times the attempts at most)."""

    def __init__(self) -> None:
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, keys: Iterable[str], *, limit: int, window: float) -> int:
        """Seconds until another attempt is allowed for any of ``keys`` (0: allowed now)."""
        now = time.monotonic()
        wait = 0.0
        with self._lock:
            for key in keys:
                times = self._failures.get(key)
                while times and now - times[0] > window:
                    times.popleft()
                if times is not None and len(times) >= limit:
                    wait = max(wait, window - (now - times[0]))
        return int(wait) + 1 if wait else 0

    def failed(self, keys: Iterable[str]) -> None:
        """Count a failed attempt against each key."""
        now = time.monotonic()
        with self._lock:
            for key in keys:
                self._failures.setdefault(key, deque(maxlen=1000)).append(now)
            if len(self._failures) > 100_000:  # never grows without bound under a spray of names
                self._failures.clear()

    def clear(self) -> None:
        """Forget every failure (tests; a restart does the same)."""
        with self._lock:
            self._failures.clear()

    def forget(self, key: str) -> None:
        """A successful login clears the user name's count."""
        with self._lock:
            self._failures.pop(key, None)


throttle = LoginThrottle()


def flash(request: Request, response: Response, message: str, *, kind: str = "ok") -> None:
    """A one-time note shown on the next page (after a redirect)."""
    set_cookie(request, response, FLASH_COOKIE, sign("flash", json.dumps([kind, message[:500]])), max_age=60)


def redirect(request: Request, path: str, message: str | None = None, *, kind: str = "ok") -> Response:
    """303 to ``path`` (or, from htmx, an HX-Redirect), with an optional flash note."""
    if request.headers.get("hx-request"):
        response: Response = Response(status_code=204, headers={"HX-Redirect": path})
    else:
        response = RedirectResponse(path, status_code=303)
    if message:
        flash(request, response, message, kind=kind)
    return response


def _take_flash(request: Request) -> tuple[str, str] | None:
    raw = unsign("flash", request.cookies.get(FLASH_COOKIE))
    if raw is None:
        return None
    try:
        kind, message = json.loads(raw)
    except (ValueError, TypeError):
        return None
    return str(kind), str(message)


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    viewer: Viewer | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """A page or fragment from ``template``; a flash note, once shown, is cleared."""
    note = _take_flash(request)
    values = {
        "viewer": viewer,
        "flash": note,
        "version": __version__,
        "prefix": PREFIX,
        "path": request.url.path,
        **(context or {}),
    }
    response = templates.TemplateResponse(request, template, values, status_code=status_code)
    if note is not None:
        response.delete_cookie(FLASH_COOKIE, path=PREFIX)
    response.headers.update(SECURITY_HEADERS)
    return response


def error_page(request: Request, status: int, message: str, details: list[Any] | None = None) -> Response:
    """An error on a console path: an HTML page saying what went wrong (a fragment for htmx)."""
    if request.headers.get("hx-request"):
        return HTMLResponse(
            f'<p class="error" role="alert">{_escape(message)}</p>',
            status_code=status,
            headers={"HX-Retarget": "#htmx-errors", "HX-Reswap": "innerHTML"},
        )
    viewer = getattr(request.state, "viewer", None)
    return render(
        request,
        "error.html",
        {"status": status, "message": message, "details": details or []},
        viewer=viewer,
        status_code=status,
    )


def _escape(text: str) -> str:
    from markupsafe import escape

    return str(escape(text))


def login_redirect(request: Request, exc: Exception) -> Response:
    """Where a request without a live login goes: the login page, back to the page asked for after."""
    assert isinstance(exc, LoginRequired)
    target = f"{PREFIX}/login?next={quote(exc.next_path, safe='/')}"
    if request.headers.get("hx-request"):
        return Response(status_code=401, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def console_error(request: Request, exc: SkuportError) -> Response:
    """A domain error raised by a console page."""
    return error_page(request, exc.status_code, exc.message, exc.details)


def is_console(path: str) -> bool:
    """Whether a path belongs to the console (its errors are pages, not JSON)."""
    return path == PREFIX or path.startswith(PREFIX + "/")


# -- template filters --------------------------------------------------------------------------------
def when(value: dt.datetime | None) -> str:
    """A time as people read it in a table: UTC, to the second."""
    if value is None:
        return NOTHING
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def ago(value: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """'3 min ago', 'in 2 h'."""
    if value is None:
        return NOTHING
    seconds = ((now or utcnow()) - value).total_seconds()
    future, seconds = seconds < 0, abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            text = f"{int(seconds // size)} {unit}"
            break
    else:
        text = f"{int(seconds)} s"
    return f"in {text}" if future else f"{text} ago"


def size(value: int | None) -> str:
    """Bytes in B, kB, MB, GB."""
    if value is None:
        return NOTHING
    amount = float(value)
    for unit in ("B", "kB", "MB", "GB"):
        if amount < 1000 or unit == "GB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1000
    return f"{amount:.1f} GB"


def duration(start: dt.datetime | None, end: dt.datetime | None) -> str:
    """A run's duration, '1.2 s' or '3 min 4 s'."""
    if start is None or end is None:
        return NOTHING
    seconds = (end - start).total_seconds()
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} min {int(seconds % 60)} s"


templates.env.globals.update(JOB_WRITE=JOB_WRITE)  # templates hide what the API's role tuples refuse
templates.env.filters.update(
    when=when,
    ago=ago,
    size=size,
    iso=iso_z,
    duration=duration,
    number=lambda n: NOTHING if n is None else f"{n:,}",
)
