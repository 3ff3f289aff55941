"""Built-in roles and what each group of endpoints needs."""

from __future__ import annotations

from enum import StrEnum


class RoleId(StrEnum):
    """The roles skuport ships with."""

    ADMIN = "role-admin"
    EDITOR = "role-editor"
    VIEWER = "role-viewer"
    RUNNER = "role-runner"


BUILTIN_ROLES: dict[str, tuple[str, str]] = {
    RoleId.ADMIN: ("Administrator", "Everything, including the catalogue model and users."),
    RoleId.EDITOR: ("Editor", "Edits records and export jobs."),
    RoleId.VIEWER: ("Viewer", "Reads everything, changes nothing."),
    RoleId.RUNNER: ("Runner", "Records export runs reported by an external runner."),
}

# Who may do what; reading is open to every authenticated user.
CATALOG_WRITE = (RoleId.ADMIN,)
RECORD_WRITE = (RoleId.ADMIN, RoleId.EDITOR)
JOB_WRITE = (RoleId.ADMIN, RoleId.EDITOR)
RUN_RECORD = (RoleId.ADMIN, RoleId.RUNNER)
USER_ADMIN = (RoleId.ADMIN,)
