"""Import every model so metadata (Alembic, tests) sees all tables."""

from skuport.auth.models import LoginSession, Role, User
from skuport.catalog.models import (
    Attribute,
    Catalog,
    Category,
    Dimension,
    LifecycleState,
    Schema,
    Segment,
    Transition,
    Workflow,
)
from skuport.db import Base
from skuport.exports.models import Export  # noqa: F401
from skuport.jobs.models import ExportJob, ExportRun  # noqa: F401
from skuport.records.models import AuditEntry, Record, RecordCategory, RecordTombstone, RecordValue

__all__ = [
    "Attribute",
    "AuditEntry",
    "Base",
    "Catalog",
    "Category",
    "Dimension",
    "LifecycleState",
    "LoginSession",
    "Record",
    "RecordCategory",
    "RecordTombstone",
    "RecordValue",
    "Role",
    "Schema",
    "Segment",
    "Transition",
    "User",
    "Workflow",
]
