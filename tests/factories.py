"""Plain factory functions for test data."""

from __future__ import annotations

import datetime as dt

from skuport.auth.service import upsert_user
from skuport.auth.tokens import create_token
from skuport.config import get_settings
from skuport.db import session_scope


def token_for(user_id: str, ttl: dt.timedelta = dt.timedelta(hours=1)) -> str:
    """A valid token for an existing user."""
    return create_token(get_settings(), user_id=user_id, ttl=ttl)


def make_user(user_id: str, *roles: str) -> dict[str, str]:
    """Create (or refresh) a user with these roles; return its auth headers."""
    with session_scope() as session:
        upsert_user(session, user_id=user_id, name=user_id, role_ids=list(roles))
    return {"Authorization": f"Bearer {token_for(user_id)}"}
