"""Test harness: one database per run (SQLite or PostgreSQL), emptied between tests.

``SKUPORT_TEST_DB=postgres`` runs the suite on PostgreSQL (the machine's, or a throwaway one).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

TEST_DB = os.environ.get("SKUPORT_TEST_DB", "sqlite")
_tmp = Path(tempfile.mkdtemp(prefix="skuport-test-"))
os.environ["SKUPORT_DATA_DIR"] = str(_tmp / "data")
os.environ["SKUPORT_SECRET_KEY"] = "test-secret-key-not-for-production"
os.environ.pop("SKUPORT_DATABASE_URL", None)
os.environ.pop("SKUPORT_PLAN_SKU_LIMIT", None)
# The real servers of the tests (moto, Azurite, SFTP, receivers) listen on loopback: allowed here, while
# the network guard's own tests (tests/security, the webhook refusals) turn the allowance off again.
os.environ["SKUPORT_ALLOW_PRIVATE_NETWORKS"] = "true"

from fastapi.testclient import TestClient  # noqa: E402

from skuport.config import get_settings  # noqa: E402
from skuport.db import Base, get_engine, reset_engine, session_scope  # noqa: E402
from tests.factories import token_for  # noqa: E402


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """The URL of this run's database, migrated to head."""
    if TEST_DB == "postgres":
        from tests.pg import fresh_database

        with fresh_database() as url:
            yield from _use(url)
    else:
        yield from _use(f"sqlite:///{_tmp / 'test.db'}")


def _use(url: str) -> Iterator[str]:
    os.environ["SKUPORT_DATABASE_URL"] = url
    get_settings.cache_clear()
    reset_engine()
    from skuport.bootstrap import bootstrap

    bootstrap()
    yield url
    reset_engine()


def _quiesce() -> None:
    """Let work a previous test queued (an export, a run) finish before its rows are wiped.

    Otherwise a TRUNCATE can deadlock with a task still writing on PostgreSQL.
    """
    from skuport.scheduling.executor import InProcessExecutor, get_executor

    if get_executor.cache_info().currsize:
        executor = get_executor()
        if isinstance(executor, InProcessExecutor) and not executor.wait_idle(timeout=60):
            raise RuntimeError("background tasks of the previous test did not finish within 60 s")


def _truncate() -> None:
    from sqlalchemy.exc import OperationalError

    import skuport.models  # noqa: F401

    _quiesce()
    engine = get_engine()
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    for attempt in range(5):
        try:
            with engine.begin() as conn:
                if engine.dialect.name == "postgresql":
                    queue = [
                        "procrastinate_jobs",
                        "procrastinate_events",
                        "procrastinate_periodic_defers",
                        "procrastinate_workers",
                    ]  # the scale-out queue (migration 0007)
                    conn.execute(
                        text("TRUNCATE " + ", ".join(f'"{t}"' for t in [*tables, *queue]) + " CASCADE")
                    )
                else:
                    for table in tables:
                        conn.execute(text(f'DELETE FROM "{table}"'))
            return
        except OperationalError:
            # A thread outside the executor (a sweep, a live server) may still hold a lock; retry.
            if attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))


@pytest.fixture(autouse=True)
def clean_db(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test starts from an empty database holding only the built-in roles."""
    if "database_url" not in request.fixturenames and not request.node.get_closest_marker("db"):
        # Pure unit tests need no database.
        yield
        return
    _truncate()
    from skuport.auth.service import ensure_builtin_roles

    with session_scope() as session:
        ensure_builtin_roles(session)
    yield


@pytest.fixture
def db(database_url: str) -> str:
    """Request a database for a test that uses sessions directly."""
    return database_url


@pytest.fixture
def memory_executor(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The in-memory executor as the process's executor: queued work is only recorded (request it first)."""
    from skuport.scheduling.executor import get_executor

    monkeypatch.setenv("SKUPORT_EXECUTOR", "memory")
    get_settings.cache_clear()
    get_executor.cache_clear()
    yield get_executor()
    monkeypatch.undo()
    get_settings.cache_clear()
    get_executor.cache_clear()


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    """An API client on a fresh app (no token)."""
    from skuport.app import create_app

    with TestClient(create_app(), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def world(database_url: str) -> None:
    """The demo world of the seeds: schema-apparel, dimensions, workflow, catalog, user-admin."""
    from skuport.demo import load_seed_world

    with session_scope() as session:
        load_seed_world(session)


@pytest.fixture
def admin(world: None) -> dict[str, str]:
    """Headers of user-admin."""
    return {"Authorization": f"Bearer {token_for('user-admin')}"}


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """URL of a moto S3 server on 127.0.0.1 (a real HTTP server speaking the S3 protocol)."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Set ``SKUPORT_*`` variables for one test (``configure(export_ttl="1d")``)."""

    def apply(**values: Any) -> None:
        for name, value in values.items():
            monkeypatch.setenv(f"SKUPORT_{name.upper()}", str(value))
        get_settings.cache_clear()

    yield apply
    monkeypatch.undo()
    get_settings.cache_clear()
