"""The housekeeping loop: a locked database is one warning line and a retry, never a traceback."""

from __future__ import annotations

import logging
import sqlite3
import threading

import pytest
from sqlalchemy.exc import OperationalError

from skuport.background import Housekeeper
from skuport.config import get_settings


def test_a_locked_database_is_one_line_and_the_next_pass_retries(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    keeper = Housekeeper(get_settings().model_copy(update={"scheduler_interval": 0.01}))
    passes: list[int] = []
    done = threading.Event()

    def pass_once() -> None:
        passes.append(1)
        if len(passes) == 1:
            raise OperationalError("UPDATE export_runs", {}, sqlite3.OperationalError("database is locked"))
        done.set()

    keeper.pass_once = pass_once  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="skuport.background"):
        keeper.start()
        assert done.wait(10), "the pass after the locked one did not run"
        keeper.stop()
    (line,) = [r for r in caplog.records if r.name == "skuport.background"]
    assert line.getMessage() == "housekeeping pass skipped: the database is locked; retrying in 0.01s"
    assert line.exc_info is None and len(passes) >= 2
