"""Users and roles: seeding the built-in roles, creating and changing users."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from skuport.auth.models import Role, User
from skuport.auth.roles import BUILTIN_ROLES, RoleId
from skuport.auth.schemas import UserCreate, UserUpdate
from skuport.errors import Conflict, ValidationFailed, not_found
from skuport.ids import new_id


def ensure_builtin_roles(session: Session) -> None:
    """Create the built-in roles that are missing."""
    existing = set(session.scalars(select(Role.id)))
    for role_id, (name, description) in BUILTIN_ROLES.items():
        if role_id not in existing:
            session.add(Role(id=str(role_id), name=name, description=description))
    session.flush()


def list_roles(session: Session) -> Sequence[Role]:
    """Every role."""
    return session.scalars(select(Role).order_by(Role.id)).all()


def list_users(session: Session) -> Sequence[User]:
    """Every user."""
    return session.scalars(select(User).order_by(User.id)).all()


def get_user(session: Session, *, user_id: str) -> User:
    """One user, or 404."""
    user = session.get(User, user_id)
    if user is None:
        raise not_found("User", user_id)
    return user


def _check_roles(session: Session, role_ids: list[str]) -> None:
    known = set(session.scalars(select(Role.id)))
    unknown = [r for r in role_ids if r not in known]
    if unknown:
        raise ValidationFailed(
            f"Unknown role(s): {', '.join(unknown)}.", details=[{"field": "roleIds", "unknown": unknown}]
        )


def create_user(session: Session, *, data: UserCreate) -> User:
    """Create a user with the given roles."""
    ensure_builtin_roles(session)
    _check_roles(session, data.role_ids)
    user_id = data.id or new_id("user")
    if session.get(User, user_id) is not None:
        raise Conflict(f"User '{user_id}' already exists.", code="already_exists")
    user = User(
        id=user_id,
        name=data.name,
        email=data.email,
        role_ids=list(dict.fromkeys(data.role_ids)),
        active=data.active,
    )
    session.add(user)
    session.flush()
    return user


def update_user(session: Session, *, user_id: str, data: UserUpdate) -> User:
    """Change the fields the request carries."""
    user = get_user(session, user_id=user_id)
    was_admin = _is_active_admin(user)
    if data.role_ids is not None:
        _check_roles(session, data.role_ids)
        user.role_ids = list(dict.fromkeys(data.role_ids))
    if data.name is not None:
        user.name = data.name
    if data.email is not None:
        user.email = data.email
    if data.active is not None:
        user.active = data.active
    if was_admin and not _is_active_admin(user):
        _keep_an_admin(session, leaving=user)
    session.flush()
    return user


def _is_active_admin(user: User) -> bool:
    return bool(user.active) and RoleId.ADMIN in (user.role_ids or [])


def _keep_an_admin(session: Session, *, leaving: User) -> None:
    """Refuse the change that would leave no active admin (recovery would need database access)."""
    # Locks the users' rows (PostgreSQL) so two admins demoting each other at once cannot both win.
    others = session.scalars(
        select(User).where(User.id != leaving.id, User.active.is_(True)).with_for_update()
    ).all()
    if not any(_is_active_admin(other) for other in others):
        raise Conflict(
            f"User '{leaving.id}' is the last active admin: give another user the role "
            f"'{RoleId.ADMIN}' first.",
            code="last_admin",
        )


def upsert_user(session: Session, *, user_id: str, name: str, role_ids: list[str]) -> User:
    """Create or refresh a user (demo data, first start)."""
    ensure_builtin_roles(session)
    user = session.get(User, user_id)
    if user is None:
        user = User(id=user_id, name=name, role_ids=role_ids, active=True)
        session.add(user)
    else:
        user.role_ids = role_ids
    session.flush()
    return user
