"""API schemas of users and roles."""

from __future__ import annotations

from pydantic import Field, field_validator

from skuport.api import CamelModel, Flag, StrictCamelModel, Timestamp
from skuport.ids import check_client_id


class RoleRead(CamelModel):
    """A role."""

    id: str
    name: str
    description: str | None = None


class UserCreate(StrictCamelModel):
    """A new user."""

    id: str | None = Field(default=None, description="Optional id such as 'user-jane'.")
    name: str = Field(min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    role_ids: list[str] = Field(default_factory=list)
    active: Flag = True

    @field_validator("id")
    @classmethod
    def _id(cls, value: str | None) -> str | None:
        return None if value is None else check_client_id(value, "user")


class UserUpdate(StrictCamelModel):
    """Changes to a user; absent fields stay as they are."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    role_ids: list[str] | None = None
    active: Flag | None = None


class UserRead(CamelModel):
    """A user."""

    id: str
    name: str
    email: str | None = None
    role_ids: list[str]
    active: bool
    created_at: Timestamp
