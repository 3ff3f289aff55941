"""PostgreSQL for the tests: the machine's server, or a throwaway cluster when none answers."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

ADMIN_URL = os.environ.get("SKUPORT_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/test")


def _reachable(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def throwaway_cluster() -> Iterator[str]:
    """Start a private PostgreSQL from Debian's binaries; yields an admin URL."""
    bindir = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]
    folder = Path(tempfile.mkdtemp(prefix="skuport-pg-"))
    shutil.chown(folder, "postgres", "postgres")
    port = _free_port()
    run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run(
        [*run_as, str(bindir / "initdb"), "-D", str(folder / "data"), "-A", "trust", "-U", "postgres"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *run_as,
            str(bindir / "pg_ctl"),
            "-D",
            str(folder / "data"),
            "-l",
            str(folder / "log"),
            "-w",
            "-o",
            f"-p {port} -c listen_addresses=127.0.0.1 -k {folder} -c fsync=off",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*run_as, str(bindir / "pg_ctl"), "-D", str(folder / "data"), "-m", "fast", "-w", "stop"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def admin_url() -> Iterator[str]:
    """An admin URL of a running PostgreSQL, starting a throwaway one if needed."""
    if _reachable(ADMIN_URL):
        yield ADMIN_URL
        return
    with throwaway_cluster() as url:
        yield url


@contextmanager
def fresh_database(prefix: str = "skuport_test") -> Iterator[str]:
    """A new, empty database for this run (dropped at the end); yields a SQLAlchemy URL."""
    with admin_url() as admin:
        name = f"{prefix}_{secrets.token_hex(4)}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        base = admin.rsplit("/", 1)[0]
        try:
            yield f"{base.replace('postgresql://', 'postgresql+psycopg://', 1)}/{name}"
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
