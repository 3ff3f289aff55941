"""FastAPI dependencies: the current principal and role gates."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from skuport.api import SessionDep
from skuport.auth.models import User
from skuport.auth.tokens import verify_token
from skuport.config import get_settings
from skuport.errors import Forbidden, Unauthorized

bearer = HTTPBearer(auto_error=False, description="JWT minted by `skuport token create`.")


@dataclass(frozen=True)
class Principal:
    """The authenticated user of a request."""

    id: str
    role_ids: frozenset[str] = field(default_factory=frozenset)

    def has_any(self, roles: Iterable[str]) -> bool:
        """Whether the user holds at least one of the roles."""
        return bool(self.role_ids.intersection(roles))


def current_principal(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """Authenticate the bearer token and load the user's roles."""
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized("Missing bearer token: send 'Authorization: Bearer <token>'.")
    user_id = verify_token(get_settings(), credentials.credentials)
    user = session.get(User, user_id)
    if user is None or not user.active:
        raise Unauthorized("The token's user does not exist or is disabled.", code="invalid_token")
    principal = Principal(id=user.id, role_ids=frozenset(user.role_ids or []))
    request.state.principal = principal
    return principal


CurrentUser = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: str) -> Callable[[Principal], Principal]:
    """A dependency that lets through only users holding one of ``roles``."""

    def gate(principal: CurrentUser) -> Principal:
        if not principal.has_any(roles):
            raise Forbidden(f"This action needs one of the roles: {', '.join(roles)}.")
        return principal

    return gate
