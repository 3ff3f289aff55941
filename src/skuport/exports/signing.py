"""Signed, expiring download URLs: HMAC-SHA256 over the export id and the expiry time.

The signing key is derived from each of ``settings.secret_keys`` (newest signs, any verifies), so a
key rotation keeps URLs already handed out working until they expire.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from enum import StrEnum

from skuport.config import Settings
from skuport.errors import Forbidden

_HEX = re.compile(r"[0-9a-f]{64}")


class SignatureProblem(StrEnum):
    """Why a signed URL was refused (the error code of the 403)."""

    INVALID = "invalid_signature"
    EXPIRED = "signature_expired"


def _key(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"skuport-export-download-v1", hashlib.sha256).digest()


def _mac(secret: str, export_id: str, expires: int) -> str:
    message = f"{export_id}\n{expires}".encode()
    return hmac.new(_key(secret), message, hashlib.sha256).hexdigest()


def sign(settings: Settings, *, export_id: str, expires_at: dt.datetime) -> tuple[int, str]:
    """The ``(expires, signature)`` query parameters for a download of ``export_id``."""
    expires = int(expires_at.timestamp())
    return expires, _mac(settings.secret_keys[0], export_id, expires)


def verify(
    settings: Settings, *, export_id: str, expires: str | int | None, signature: str | None, now: dt.datetime
) -> None:
    """Accept a signature made by any current key for this id and expiry, before it expires; else 403."""
    try:
        expires_int = int(expires) if expires is not None else None
    except ValueError:
        expires_int = None
    if expires_int is None or not signature or not _HEX.fullmatch(signature):
        raise Forbidden(
            "The download link is incomplete: it needs both 'expires' and 'signature'.",
            code=SignatureProblem.INVALID,
        )
    valid = any(
        hmac.compare_digest(_mac(secret, export_id, expires_int), signature)
        for secret in settings.secret_keys
    )
    if not valid:
        raise Forbidden(
            "The download link's signature does not match: use the downloadUrl exactly as "
            "GET /exports/{id} returns it.",
            code=SignatureProblem.INVALID,
        )
    if now.timestamp() >= expires_int:
        raise Forbidden(
            "The download link has expired: fetch a fresh downloadUrl from GET /exports/{id}.",
            code=SignatureProblem.EXPIRED,
        )
