"""Cron maths: 5-field expressions evaluated in a job's IANA time zone with Debian cron's DST rules.

cronsim does the DST work: for a job at a fixed time (minute and hour fields without a star) a
time in the skipped spring-forward hour fires once, right after the jump, and a time in the
repeated fall-back hour fires once (the first pass). Jobs with a star in the minute or hour field
follow real elapsed time. Every instant leaving this module is timezone-aware UTC.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterator
from functools import lru_cache
from itertools import islice, takewhile

from cronsim import CronSim, CronSimError

from skuport.errors import ValidationFailed

_MAX_STEPS = 1000


@lru_cache(maxsize=1)
def _iana_zones() -> frozenset[str]:
    """The IANA time zone names (tzdata), without the legacy aliases' folders (posix/, right/)."""
    return frozenset(
        z
        for z in zoneinfo.available_timezones()
        if not z.startswith(("posix/", "right/")) and z not in ("localtime", "Factory")
    )


def check_timezone(name: str, *, field: str = "timezone") -> zoneinfo.ZoneInfo:
    """The IANA zone called ``name`` (only names in the IANA list), or a 422 naming the field."""
    try:
        if not isinstance(name, str) or name not in _iana_zones():
            raise ValueError(name)
        return zoneinfo.ZoneInfo(name)
    except (ValueError, OSError, zoneinfo.ZoneInfoNotFoundError):
        raise ValidationFailed(
            f"{field}: '{str(name)[:100]}' is not an IANA time zone (e.g. 'UTC', 'Europe/Copenhagen').",
            details=[{"field": field, "message": "unknown time zone", "value": str(name)[:100]}],
        ) from None


def check_cron(expr: str, *, field: str = "schedule") -> str:
    """Validate a 5-field cron expression; a 422 naming ``field`` says what is wrong."""
    problem = _cron_problem(expr)
    if problem:
        raise ValidationFailed(
            f"{field}: '{expr}' is not a valid cron expression: {problem}. Use 5 fields "
            "'minute hour day-of-month month day-of-week', e.g. '0 2 * * *' for 02:00 every day.",
            details=[{"field": field, "message": problem, "value": expr}],
        )
    return " ".join(expr.split())


@lru_cache(maxsize=512)
def _cron_problem(expr: str) -> str | None:
    if not isinstance(expr, str) or not expr.strip():
        return "it is empty"
    parts = expr.split()
    if len(parts) != 5:
        return f"it has {len(parts)} fields, expected 5"
    try:
        it = CronSim(expr, dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
        next(it)
    except CronSimError as exc:
        return str(exc).lower() or "unparsable"
    except StopIteration:
        return "it never matches a date"
    except (ValueError, IndexError, TypeError):
        return "unparsable"
    return None


def _ticks(expr: str, tz: str, after: dt.datetime) -> Iterator[dt.datetime]:
    """Ticks strictly after ``after``, in order, as UTC instants."""
    zone = zoneinfo.ZoneInfo(tz)
    after_utc = after.astimezone(dt.UTC)
    it = CronSim(expr, after_utc.astimezone(zone))
    last = after_utc
    while True:
        try:
            tick = next(it).astimezone(dt.UTC)
        except StopIteration:
            return
        # Local wall-clock iteration can yield a first-pass time that is already past when
        # ``after`` lies in the second pass of a repeated hour: drop anything not in the future.
        if tick > last:
            last = tick
            yield tick


def next_after(expr: str, tz: str, after: dt.datetime) -> dt.datetime | None:
    """The first tick strictly after ``after`` (UTC), or None if the expression never fires again."""
    for tick in islice(_ticks(expr, tz, after), 1):
        return tick
    return None


def ticks_between(
    expr: str, tz: str, start: dt.datetime, end: dt.datetime, *, limit: int = _MAX_STEPS
) -> list[dt.datetime]:
    """Every tick in (start, end], UTC, at most ``limit`` of them."""
    end_utc = end.astimezone(dt.UTC)
    return list(islice(takewhile(lambda t: t <= end_utc, _ticks(expr, tz, start)), limit))


def latest_at_or_before(expr: str, tz: str, at: dt.datetime) -> dt.datetime | None:
    """The last tick at or before ``at`` (UTC), exactly as the forward schedule fires it."""
    at_utc = at.astimezone(dt.UTC)
    # Walk back in growing windows until one holds a tick; the forward iteration inside the
    # window keeps DST fix-ups identical to what a scheduler running all along would have seen.
    window = dt.timedelta(minutes=2)
    while window < dt.timedelta(days=366 * 30):
        last = None
        for tick in takewhile(lambda t: t <= at_utc, _ticks(expr, tz, at_utc - window)):
            last = tick
        if last is not None:
            return last
        window *= 8
    return None


def describe(expr: str) -> str:
    """A human description of the schedule, e.g. ``"At 02:00"`` (24-hour clock)."""
    try:
        from cron_descriptor import ExpressionDescriptor, Options

        options = Options()
        options.use_24hour_time_format = True
        return str(ExpressionDescriptor(expr, options).get_description())
    except Exception:
        try:
            return str(CronSim(expr, dt.datetime(2000, 1, 1, tzinfo=dt.UTC)).explain())
        except Exception:
            return expr


def upcoming(expr: str, tz: str, after: dt.datetime, count: int = 5) -> list[dt.datetime]:
    """The next ``count`` ticks strictly after ``after``, UTC (what a schedule will do, for people)."""
    return list(islice(_ticks(expr, tz, after), count))
