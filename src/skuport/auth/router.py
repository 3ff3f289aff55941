"""Users and roles endpoints (admin writes)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from skuport.api import SessionDep, api_router
from skuport.auth import service
from skuport.auth.deps import CurrentUser, Principal, require_roles
from skuport.auth.roles import USER_ADMIN
from skuport.auth.schemas import RoleRead, UserCreate, UserRead, UserUpdate

router = api_router(tags=["users"])
Admin = Annotated[Principal, Depends(require_roles(*USER_ADMIN))]


@router.get("/roles", response_model=list[RoleRead])
def list_roles(session: SessionDep, _user: CurrentUser) -> list[RoleRead]:
    """List the roles."""
    return [RoleRead.model_validate(r) for r in service.list_roles(session)]


@router.get("/users", response_model=list[UserRead])
def list_users(session: SessionDep, _user: Admin) -> list[UserRead]:
    """List the users (admin)."""
    return [UserRead.model_validate(u) for u in service.list_users(session)]


@router.get("/users/me", response_model=UserRead)
def me(session: SessionDep, user: CurrentUser) -> UserRead:
    """The user the token belongs to."""
    return UserRead.model_validate(service.get_user(session, user_id=user.id))


@router.post("/users", response_model=UserRead, status_code=201)
def create_user(data: UserCreate, session: SessionDep, _user: Admin) -> UserRead:
    """Create a user (admin)."""
    return UserRead.model_validate(service.create_user(session, data=data))


@router.get("/users/{user_id}", response_model=UserRead)
def get_user(user_id: str, session: SessionDep, _user: Admin) -> UserRead:
    """Get a user (admin)."""
    return UserRead.model_validate(service.get_user(session, user_id=user_id))


@router.patch("/users/{user_id}", response_model=UserRead)
def update_user(user_id: str, data: UserUpdate, session: SessionDep, _user: Admin) -> UserRead:
    """Change a user's name, email, roles or active flag (admin)."""
    return UserRead.model_validate(service.update_user(session, user_id=user_id, data=data))
