"""Log lines: JSON with the work's ids when asked, the ids appended to text lines otherwise."""

from __future__ import annotations

import io
import logging

import orjson

from skuport.logs import TEXT_FORMAT, WORK, JsonFormatter, WorkFilter


def _line(formatter: logging.Formatter, message: str) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(WorkFilter())
    handler.setFormatter(formatter)
    logger = logging.getLogger("skuport.test-logs")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning(message)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue().strip()


def test_json_lines_carry_the_work_s_ids() -> None:
    token = WORK.set({"jobId": "expjob-a", "runId": "run-1", "attempt": 2, "worker": "host:1:ab"})
    try:
        data = orjson.loads(_line(JsonFormatter(), "delivered"))
    finally:
        WORK.reset(token)
    assert data["message"] == "delivered" and data["level"] == "warning"
    ids = (data["jobId"], data["runId"], data["attempt"], data["worker"])
    assert ids == ("expjob-a", "run-1", 2, "host:1:ab")
    assert "runId" not in orjson.loads(_line(JsonFormatter(), "idle"))


def test_text_lines_end_with_the_work_s_ids() -> None:
    token = WORK.set({"exportId": "exp-1", "attempt": 1})
    try:
        line = _line(logging.Formatter(TEXT_FORMAT), "stored")
    finally:
        WORK.reset(token)
    assert line.endswith("stored exportId=exp-1 attempt=1")
