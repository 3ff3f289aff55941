"""Start-up: migrate the database and make sure the built-in roles exist."""

from __future__ import annotations

from skuport.auth.service import ensure_builtin_roles
from skuport.db import session_scope
from skuport.migrate import upgrade


def bootstrap() -> None:
    """Upgrade the schema to head and seed the built-in roles."""
    upgrade()
    with session_scope() as session:
        ensure_builtin_roles(session)
