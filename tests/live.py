"""A real `skuport serve` process, started the way the README does, on its own database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

SKUPORT = [sys.executable, "-m", "skuport.cli"]


@dataclass
class LiveServer:
    """A running server: its base URL and an admin token."""

    url: str
    token: str
    env: dict[str, str]

    @property
    def headers(self) -> dict[str, str]:
        """Admin auth headers."""
        return {"Authorization": f"Bearer {self.token}"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def live_server(database_url: str | None, extra_env: dict[str, str] | None = None) -> Iterator[LiveServer]:
    """`skuport demo`, `skuport token create`, then `skuport serve` on a free port; stopped at the end."""
    data_dir = Path(tempfile.mkdtemp(prefix="skuport-live-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKUPORT_")}
    env.update({"SKUPORT_DATA_DIR": str(data_dir), "SKUPORT_LOG_LEVEL": "warning", **(extra_env or {})})
    if database_url:
        env["SKUPORT_DATABASE_URL"] = database_url
    subprocess.run([*SKUPORT, "demo"], env=env, check=True, capture_output=True, timeout=120)
    token = subprocess.run(
        [*SKUPORT, "token", "create", "--user", "user-admin"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()
    port = _free_port()
    log = open(data_dir / "server.log", "wb")
    process = subprocess.Popen(
        [*SKUPORT, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("server did not start:\n" + (data_dir / "server.log").read_text())
            time.sleep(0.1)
        yield LiveServer(url=url, token=token, env=env)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@contextmanager
def suite_server(extra_env: dict[str, str] | None = None) -> Iterator[LiveServer]:
    """A live server on the database the suite runs on: a fresh PostgreSQL database, or SQLite."""
    if os.environ.get("SKUPORT_TEST_DB") == "postgres":
        from tests.pg import fresh_database

        with fresh_database("skuport_live") as url, live_server(url, extra_env) as live:
            yield live
    else:
        with live_server(None, extra_env) as live:
            yield live
