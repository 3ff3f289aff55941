"""File names from a job's ``filenameTemplate``: ``{date}``, ``{datetime}``, ``{jobId}``, ``{runId}``."""

from __future__ import annotations

import datetime as dt
import string
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from skuport.exporting.destinations.base import MAX_NAME_BYTES, DestinationConfigError, check_relative_path

PLACEHOLDERS = ("date", "datetime", "jobId", "runId")
MAX_LENGTH = 512
_EXPANDS_TO = {"date": 10, "datetime": 15, "jobId": 80, "runId": 80}
"""The longest text each placeholder is replaced by (ids are at most 80 characters)."""


def _refuse(template: str, reason: str) -> DestinationConfigError:
    return DestinationConfigError(
        f"Invalid filenameTemplate {template!r}: {reason}.",
        details=[{"field": "filenameTemplate", "message": reason, "type": "value_error"}],
    )


def validate_filename_template(template: str) -> str:
    """Return ``template`` if it is safe; refuse (422) one that could escape the destination path."""
    _check_path_shape(template)
    _check_placeholders(template)
    _check_part_lengths(template)
    return template


def _check_path_shape(template: str) -> None:
    """Refuse an empty, over-long, absolute, folder-like or otherwise unsafe relative path."""
    if not isinstance(template, str) or not template.strip():
        raise _refuse(str(template), "it must not be empty")
    if len(template) > MAX_LENGTH:
        raise _refuse(template[:40] + "…", f"it must be at most {MAX_LENGTH} characters")
    if template.startswith("/"):
        raise _refuse(template, "it must be relative, not an absolute path")
    if template.endswith("/"):
        raise _refuse(template, "it must name a file, not a folder")
    try:
        check_relative_path(template, what="it", allow_empty=False)
    except ValueError as exc:
        raise _refuse(template, str(exc)) from None
    if any(part in ("", ".") for part in template.split("/")):
        raise _refuse(template, "it must not contain empty or '.' path segments")


def _check_placeholders(template: str) -> None:
    """Refuse unbalanced braces, unknown placeholders and placeholders with a format or conversion."""
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise _refuse(template, f"unbalanced braces ({exc})") from None
    for _literal, name, spec, conversion in fields:
        if name is None:
            continue
        if name not in PLACEHOLDERS:
            allowed = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
            raise _refuse(template, f"unknown placeholder {{{name}}}; use {allowed}")
        if spec or conversion:
            raise _refuse(template, f"placeholder {{{name}}} takes no format or conversion")


def _check_part_lengths(template: str) -> None:
    """Refuse a path part that could outgrow ``MAX_NAME_BYTES`` once its placeholders are filled in."""
    for part in template.split("/"):
        longest = len(part.encode()) + sum(
            (_EXPANDS_TO[name] - len(name) - 2) * part.count("{" + name + "}") for name in PLACEHOLDERS
        )
        if longest > MAX_NAME_BYTES:
            raise _refuse(
                template,
                f"the part '{part[:40]}' can grow to {longest} bytes once its "
                f"placeholders are filled in; each part must stay within {MAX_NAME_BYTES}",
            )


def render_filename(template: str, *, scheduled_for: dt.datetime, tz: str, job_id: str, run_id: str) -> str:
    """The file name for one run: placeholders filled from the scheduled time in the job's time zone."""
    validate_filename_template(template)
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise DestinationConfigError(
            f"Unknown time zone {tz!r}; use an IANA name such as 'Europe/Copenhagen'.",
            details=[{"field": "timezone", "message": "unknown time zone", "type": "value_error"}],
        ) from None
    when = scheduled_for if scheduled_for.tzinfo else scheduled_for.replace(tzinfo=dt.UTC)
    local = when.astimezone(zone)
    name = template.format(
        date=local.strftime("%Y-%m-%d"), datetime=local.strftime("%Y%m%dT%H%M%S"), jobId=job_id, runId=run_id
    )
    # The values come from our own ids, but a file name is checked where it is used, not where it came from.
    try:
        check_relative_path(name, what="the file name", allow_empty=False)
    except ValueError as exc:
        raise _refuse(template, str(exc)) from None
    if any(part in ("", ".") for part in name.split("/")):
        raise _refuse(template, "it renders to a name with empty or '.' path segments")
    return name
