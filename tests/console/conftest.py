"""Console tests start with no failed logins counted (the throttle lives in the process)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _fresh_throttle() -> Iterator[None]:
    from skuport.console.web import throttle

    throttle.clear()
    yield
    throttle.clear()
