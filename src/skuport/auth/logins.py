"""Console logins: argon2 password hashes and server-side login sessions.

The cookie holds a random token; the table holds only its SHA-256, so a leaked database cannot be
replayed as a login. A session ends when its row goes: logout, a new password, the user disabled, or
its idle or absolute lifetime passed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete
from sqlalchemy.orm import Session

from skuport.auth.models import LoginSession, User
from skuport.db import utcnow
from skuport.errors import ValidationFailed

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1000
TOUCH_EVERY = dt.timedelta(seconds=60)
"""A session's last-seen time is written at most this often (reads stay reads)."""

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def check_password_rules(password: str) -> None:
    """A password long enough to resist guessing and short enough to hash; 422 saying why not."""
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise ValidationFailed(
            f"A password needs {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters.",
            details=[{"field": "password", "message": "length"}],
        )


def set_password(session: Session, *, user: User, password: str) -> None:
    """Give ``user`` a new console password; every login session of theirs ends."""
    check_password_rules(password)
    user.password_hash = _hasher.hash(password)
    session.execute(delete(LoginSession).where(LoginSession.user_id == user.id))
    session.flush()


def authenticate(session: Session, *, user_id: str, password: str) -> User | None:
    """The active user whose password this is, else None (as slow for an unknown user as a known one)."""
    user = session.get(User, user_id[:80]) if user_id else None
    stored = user.password_hash if user is not None and user.active else None
    try:
        _hasher.verify(stored or _DUMMY_HASH, password[:MAX_PASSWORD_LENGTH])
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if user is None or stored is None:
        return None
    if _hasher.check_needs_rehash(stored):
        user.password_hash = _hasher.hash(password[:MAX_PASSWORD_LENGTH])
    return user


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Login:
    """A live login: who, and the CSRF token its forms carry."""

    user: User
    csrf_token: str
    last_seen_at: dt.datetime

    def needs_touch(self, now: dt.datetime | None = None) -> bool:
        """Whether the last-seen time is old enough to be written again."""
        return (now or utcnow()) - self.last_seen_at > TOUCH_EVERY


def start_session(session: Session, *, user: User) -> str:
    """A new login session for ``user``; returns the token the cookie carries."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        LoginSession(
            token_hash=_digest(token),
            user_id=user.id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
        )
    )
    session.flush()
    return token


def resume_session(
    session: Session,
    *,
    token: str,
    idle: dt.timedelta,
    absolute: dt.timedelta,
    now: dt.datetime | None = None,
) -> Login | None:
    """The login ``token`` belongs to, if it is still live; an expired one is removed."""
    now = now or utcnow()
    row = session.get(LoginSession, _digest(token))
    if row is None:
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active or now - row.last_seen_at > idle or now - row.created_at > absolute:
        session.delete(row)
        session.flush()
        return None
    return Login(user=user, csrf_token=row.csrf_token, last_seen_at=row.last_seen_at)


def touch_session(session: Session, *, token: str, now: dt.datetime | None = None) -> None:
    """Record that the login was used now (idle expiry counts from here)."""
    row = session.get(LoginSession, _digest(token))
    if row is not None:
        row.last_seen_at = now or utcnow()
        session.flush()


def end_expired_sessions(
    session: Session, *, idle: dt.timedelta, absolute: dt.timedelta, now: dt.datetime | None = None
) -> int:
    """Remove the logins that can no longer be resumed (run at each login: the table stays small)."""
    now = now or utcnow()
    result = session.execute(
        delete(LoginSession).where(
            (LoginSession.last_seen_at < now - idle) | (LoginSession.created_at < now - absolute)
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def end_session(session: Session, *, token: str) -> None:
    """Log out: the session's row goes, so the cookie no longer opens anything."""
    session.execute(delete(LoginSession).where(LoginSession.token_hash == _digest(token)))
    session.flush()


def end_user_sessions(session: Session, *, user_id: str) -> None:
    """End every login of a user (disabled, roles changed, password reset)."""
    session.execute(delete(LoginSession).where(LoginSession.user_id == user_id))
    session.flush()
