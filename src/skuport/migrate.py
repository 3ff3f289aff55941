"""Run Alembic migrations programmatically (``skuport db upgrade``, server start, tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from skuport.config import get_settings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config pointing at the packaged migrations and the given database."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url or get_settings().resolved_database_url)
    return cfg


def _sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for other databases and in-memory ones)."""
    if not url.startswith("sqlite"):
        return None
    path = url.split("///", 1)[-1]
    return Path(path) if path and path != ":memory:" else None


def describe_database(url: str | None = None) -> str:
    """The database as a person would name it: the SQLite file, or the URL without its password."""
    from sqlalchemy.engine import make_url

    url = url or get_settings().resolved_database_url
    file = _sqlite_file(url)
    return str(file) if file is not None else make_url(url).render_as_string(hide_password=True)


def is_set_up(url: str | None = None) -> bool:
    """Whether the database exists and has been migrated at least once; creates nothing to find out.

    A SQLite file that is missing is not opened (opening would create it); another database is asked
    for Alembic's version table.
    """
    from sqlalchemy import create_engine, inspect

    url = url or get_settings().resolved_database_url
    file = _sqlite_file(url)
    if file is not None and not file.exists():
        return False
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return inspect(conn).has_table("alembic_version")
    finally:
        engine.dispose()


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Bring the database schema up to ``revision``."""
    command.upgrade(alembic_config(url), revision)
