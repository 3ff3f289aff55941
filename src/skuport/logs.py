"""Logging: one line per event, as text or as JSON (``SKUPORT_LOG_FORMAT=json``) with the work it is about.

While a process works on a run or a one-off export, every line it logs from that thread carries the
work's ids (``jobId``, ``runId``, ``exportId``, ``attempt``, ``worker``), set by the work lifecycle.
"""

from __future__ import annotations

import datetime as dt
import logging
from contextvars import ContextVar
from typing import Any

import orjson

WORK: ContextVar[dict[str, Any] | None] = ContextVar("skuport_work", default=None)
"""The ids of the work this thread is doing (set on claim, cleared on release)."""

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s%(work)s"


class WorkFilter(logging.Filter):
    """Adds the current work's ids to every record (``record.work_fields``, and ``work`` as text)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Never drops a record."""
        fields = WORK.get() or {}
        record.work_fields = fields
        record.work = "".join(f" {key}={value}" for key, value in fields.items()) if fields else ""
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the work's ids, the exception if any."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line."""
        data: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "work_fields", {}),
        }
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(data, default=str).decode()


def configure(level: str, fmt: str = "text") -> None:
    """Set up the root logger once: level, format (text or json), work ids on every line."""
    handler = logging.StreamHandler()
    handler.addFilter(WorkFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
