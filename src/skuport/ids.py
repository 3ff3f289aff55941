"""Prefixed, opaque identifiers such as ``ent-xK9mP2vLq3``."""

from __future__ import annotations

import re
import secrets
import string

_ALPHABET = string.ascii_letters + string.digits
ID_PATTERN = re.compile(r"^[a-z]+-[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def new_id(prefix: str, length: int = 10) -> str:
    """A new random id with the given prefix."""
    return f"{prefix}-" + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def check_client_id(value: str, prefix: str) -> str:
    """Validate an id chosen by the client: it must carry the resource's prefix."""
    if not value.startswith(prefix + "-") or not ID_PATTERN.match(value):
        raise ValueError(
            f"id must look like '{prefix}-<letters, digits, . _ ->' (at most 64 characters after the prefix)"
        )
    return value
