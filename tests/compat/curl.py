"""Run a seed's curl example as written against a live server: only base URL, token and id change."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.live import LiveServer, suite_server


@dataclass
class Curl:
    """The seed's examples, run by the real curl against ``server``."""

    server: LiveServer
    vendor_base: str
    path: str
    token_placeholder: str
    id_placeholder: str

    def command(self, example: str, *, ident: str | None = None) -> str:
        """The example with the server's base URL, token and (where it names one) the id put in."""
        text = example.replace(self.vendor_base, self.server.url + self.path)
        text = text.replace(self.token_placeholder, self.server.token)
        if ident is not None:
            text = text.replace(self.id_placeholder, ident)
        assert self.vendor_base not in text and self.token_placeholder not in text
        return text

    def __call__(self, example: str, *, ident: str | None = None, cwd: Path | None = None) -> str:
        """Run the example with bash; its standard output (the response body)."""
        env = {**os.environ, "HOME": str(cwd or Path.cwd())}  # no ~/.curlrc of the machine's user
        done = subprocess.run(
            ["bash", "-c", self.command(example, ident=ident)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=cwd,
            env=env,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def poll(
        self, example: str, *, ident: str, until: Callable[[dict[str, Any]], bool], timeout: float = 60
    ) -> dict[str, Any]:
        """Run the example until its JSON answer satisfies ``until``."""
        deadline = time.monotonic() + timeout
        while True:
            body: dict[str, Any] = json.loads(self(example, ident=ident))
            if until(body):
                return body
            assert time.monotonic() < deadline, f"still {body} after {timeout}s"
            time.sleep(0.2)


@contextmanager
def live_curl(vendor_base: str, path: str, *, token: str, ident: str = "exp_01HQ...") -> Iterator[Curl]:
    """A live server on the suite's database and the curl runner for it."""
    with suite_server() as live:
        yield Curl(live, vendor_base, path, token, ident)
