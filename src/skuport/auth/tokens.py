"""Bearer tokens: JWT signed with HS256 by a key derived from ``SKUPORT_SECRET_KEY``."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re

import jwt

from skuport.config import Settings
from skuport.errors import Unauthorized

_ISSUER = "skuport"
_TTL = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_ttl(text: str) -> dt.timedelta:
    """Parse a duration such as ``90m``, ``24h``, ``30d`` (plain numbers are seconds)."""
    match = _TTL.match(text)
    if not match or int(match.group(1)) <= 0:
        raise ValueError(f"invalid duration {text!r}: use a positive number with s, m, h, d or w")
    return dt.timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def _signing_key(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"skuport-jwt-v1", hashlib.sha256).digest()


def create_token(settings: Settings, *, user_id: str, ttl: dt.timedelta) -> str:
    """Mint a token for the user, signed with the newest key."""
    now = dt.datetime.now(dt.UTC)
    claims = {"sub": user_id, "iss": _ISSUER, "iat": now, "exp": now + ttl}
    return jwt.encode(claims, _signing_key(settings.secret_keys[0]), algorithm="HS256")


def verify_token(settings: Settings, token: str) -> str:
    """Return the user id of a valid token; any key of the rotation list may have signed it."""
    expired = False
    for secret in settings.secret_keys:
        try:
            claims = jwt.decode(
                token,
                _signing_key(secret),
                algorithms=["HS256"],
                issuer=_ISSUER,
                options={"require": ["sub", "exp", "iat"]},
            )
        except jwt.ExpiredSignatureError:
            expired = True
            continue
        except jwt.PyJWTError:
            continue
        sub = claims.get("sub")
        if isinstance(sub, str) and sub:
            return sub
    if expired:
        raise Unauthorized(
            "The token has expired; mint a new one with 'skuport token create'.", code="token_expired"
        )
    raise Unauthorized("The token is not valid.", code="invalid_token")
