"""Destination secrets: encrypted at rest (Fernet with key rotation), masked in the API, redacted in logs."""

from __future__ import annotations

import base64
import logging
import re
import threading
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from skuport.config import get_settings
from skuport.errors import SkuportError
from skuport.exporting.destinations import secret_fields, secret_urls
from skuport.exporting.destinations.base import MASK

ENCRYPTED = "$enc"
"""Key of the object that replaces a secret value at rest: ``{"$enc": "<Fernet token>"}``."""
_HKDF_SALT = b"skuport/secrets/v1"
_HKDF_INFO = b"destination-config"


class SecretError(SkuportError):
    """A stored secret could not be decrypted."""

    status_code = 500
    code = "secret_undecryptable"


def derive_key(secret: str) -> bytes:
    """A Fernet key (32 bytes, urlsafe base64) derived from one ``SKUPORT_SECRET_KEY`` entry (HKDF-SHA256)."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=_HKDF_INFO)
    return base64.urlsafe_b64encode(hkdf.derive(secret.encode()))


@lru_cache(maxsize=8)
def _fernet_for(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(derive_key(key)) for key in keys])


def fernet() -> MultiFernet:
    """All configured keys, newest first: encrypts with the first, decrypts with any."""
    return _fernet_for(tuple(get_settings().secret_keys))


def encrypt_value(value: str) -> str:
    """A Fernet token for ``value`` under the newest key."""
    return fernet().encrypt(value.encode()).decode()


def decrypt_value(token: str) -> str:
    """The plaintext of a token made with any configured key."""
    try:
        value = fernet().decrypt(token.encode()).decode()
    except (InvalidToken, ValueError, TypeError):
        raise SecretError(
            "A stored destination secret could not be decrypted with any key in SKUPORT_SECRET_KEY. "
            "If the key was changed, put the old key back after the new one (comma-separated) and re-save."
        ) from None
    remember_secret(value)
    return value


def is_encrypted(value: Any) -> bool:
    """Whether ``value`` is an encrypted secret as stored."""
    return isinstance(value, Mapping) and set(value) == {ENCRYPTED} and isinstance(value[ENCRYPTED], str)


def _map_secrets(type_: str, config: Mapping[str, Any] | None, func: Any) -> dict[str, Any]:
    """A copy of ``config`` with ``func`` applied to each present secret value (``name.*``: each item)."""
    result = dict(config or {})
    for field in secret_fields(type_):
        if field.endswith(".*"):
            name = field[:-2]
            if isinstance(result.get(name), Mapping):
                result[name] = {key: func(value) for key, value in result[name].items() if value is not None}
        elif result.get(field) is not None:
            result[field] = func(result[field])
    return result


def encrypt_config(type_: str, config: Mapping[str, Any] | None) -> dict[str, Any]:
    """``config`` with every secret replaced by ``{"$enc": token}`` (values already encrypted are kept)."""

    def _encrypt(value: Any) -> Any:
        if is_encrypted(value):
            return dict(value)
        return {ENCRYPTED: encrypt_value(str(value))}

    return _map_secrets(type_, config, _encrypt)


def decrypt_config(type_: str, config: Mapping[str, Any] | None) -> dict[str, Any]:
    """``config`` with every encrypted secret turned back into plaintext (for building the destination)."""
    return _map_secrets(type_, config, lambda v: decrypt_value(v[ENCRYPTED]) if is_encrypted(v) else v)


def mask_config(type_: str, config: Mapping[str, Any] | None) -> dict[str, Any]:
    """``config`` as the API shows it: every secret present is ``"********"`` (secrets are write-only);
    a secret URL keeps its scheme, host and path, with its credentials masked."""
    result = _map_secrets(type_, config, lambda _value: MASK)
    for field in secret_urls(type_):
        value = (config or {}).get(field)
        if value is not None:
            result[field] = mask_url(decrypt_value(value[ENCRYPTED]) if is_encrypted(value) else str(value))
    return result


def mask_url(url: str) -> str:
    """``url`` with its user info and every query value masked: ``https://********@host/p?token=********``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = MASK + "@" + netloc.rsplit("@", 1)[1]
    query = "&".join(
        f"{name}={MASK}" if value else name for name, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment and MASK))


def url_credentials(url: str) -> list[str]:
    """The secret parts of a URL (password, user, query values) for redacting a receiver's reply."""
    parts = urlsplit(url)
    found = [parts.password or "", parts.username or ""]
    found.extend(value for _name, value in parse_qsl(parts.query))
    return [value for value in found if len(value) >= 4]


def rotate_config(type_: str, config: Mapping[str, Any] | None) -> dict[str, Any]:
    """``config`` with every encrypted secret re-encrypted under the newest key."""

    def _rotate(value: Any) -> Any:
        if not is_encrypted(value):
            return {ENCRYPTED: encrypt_value(str(value))}
        try:
            return {ENCRYPTED: fernet().rotate(value[ENCRYPTED].encode()).decode()}
        except InvalidToken:
            raise SecretError(
                "A stored destination secret could not be re-encrypted: no key in "
                "SKUPORT_SECRET_KEY decrypts it."
            ) from None

    return _map_secrets(type_, config, _rotate)


def keep_masked_secrets(
    type_: str, new: Mapping[str, Any], stored: Mapping[str, Any] | None
) -> dict[str, Any]:
    """An update's config where each secret sent back as ``"********"`` keeps its stored (encrypted) value."""
    result = dict(new)
    stored = stored or {}
    for field in secret_fields(type_):
        if field.endswith(".*"):
            name = field[:-2]
            if isinstance(result.get(name), Mapping):
                previous = stored.get(name)
                old: Mapping[str, Any] = previous if isinstance(previous, Mapping) else {}
                result[name] = {
                    key: (old.get(key) if value == MASK and key in old else value)
                    for key, value in result[name].items()
                }
        elif result.get(field) == MASK and field in stored:
            result[field] = stored[field]
    return result


# --- redaction -------------------------------------------------------------------------------------------

_known: set[str] = set()
_known_lock = threading.Lock()
_MAX_KNOWN = 2048
_PATTERNS = [
    re.compile(r"(?i)(AccountKey=)[^;\s\"']+"),
    re.compile(r"(?i)([?&]sig=)[^&\s\"']+"),
    re.compile(r"(whsec_)[A-Za-z0-9+/=]+"),
    re.compile(
        r"(?i)((?:password|passphrase|secret|secretAccessKey|sasToken|accountKey)[\"']?\s*[:=]\s*[\"']?)"
        r"[^\s\"',;}]+"
    ),
    re.compile(r"(-----BEGIN [A-Z ]*PRIVATE KEY-----)[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)"),
    # A signed download URL in an access log line: the signature is what grants the download.
    re.compile(r"([?&]signature=)[^&\s\"']+"),
    # Credentials in a URL's user info (https://user:password@host/…).
    re.compile(r"(https?://)[^/\s:@\"']+:[^/\s@\"']+(?=@)"),
]


def remember_secret(value: str | None) -> None:
    """Register a plaintext secret so the log filter redacts it wherever it shows up."""
    if not value or len(value) < 6:
        return
    with _known_lock:
        if len(_known) >= _MAX_KNOWN:
            _known.clear()
        _known.add(value)


def redact(text: str, extra: Iterable[str | None] = ()) -> str:
    """``text`` with known secrets, ``extra`` values and secret-looking patterns replaced by the mask."""
    with _known_lock:
        values = sorted({*_known, *(v for v in extra if v and len(v) >= 4)}, key=len, reverse=True)
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that renders each record's message and redacts secrets from it."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the message (and exception text) in place; never drop a record."""
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is the caller's bug, not a reason to lose the record
            return True
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install_log_redaction(*handlers: logging.Handler) -> RedactingFilter:
    """Add the redacting filter to ``handlers`` (default: every handler of the root logger)."""
    redactor = RedactingFilter()
    for handler in handlers or tuple(logging.getLogger().handlers):
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(redactor)
    return redactor
