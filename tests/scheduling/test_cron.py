"""Cron maths in a job's time zone: Debian cron's DST rules (cronsim), validation, descriptions."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from skuport.errors import ValidationFailed
from skuport.scheduling.cron import (
    check_cron,
    check_timezone,
    describe,
    latest_at_or_before,
    next_after,
    ticks_between,
)

UTC = dt.UTC


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def local(ticks: list[dt.datetime], tz: str) -> list[str]:
    return [t.astimezone(ZoneInfo(tz)).strftime("%m-%d %H:%M%z") for t in ticks]


# Europe/Copenhagen: 2026-03-29 02:00 CET -> 03:00 CEST; 2026-10-25 03:00 CEST -> 02:00 CET.
# America/New_York: 2026-03-08 02:00 EST -> 03:00 EDT; 2026-11-01 02:00 EDT -> 01:00 EST.
@pytest.mark.parametrize(
    ("tz", "expr", "start", "end", "expected"),
    [
        # a fixed time inside the skipped hour fires once, right after the jump
        ("Europe/Copenhagen", "30 2 * * *", utc(2026, 3, 28, 12), utc(2026, 3, 29, 12), ["03-29 03:00+0200"]),
        ("America/New_York", "30 2 * * *", utc(2026, 3, 7, 12), utc(2026, 3, 8, 12), ["03-08 03:00-0400"]),
        # a fixed time inside the repeated hour fires once (the first pass)
        (
            "Europe/Copenhagen",
            "30 2 * * *",
            utc(2026, 10, 24, 12),
            utc(2026, 10, 25, 12),
            ["10-25 02:30+0200"],
        ),
        ("America/New_York", "30 1 * * *", utc(2026, 10, 31, 12), utc(2026, 11, 1, 12), ["11-01 01:30-0400"]),
        # a fixed time outside the transition is untouched, before and after it
        (
            "Europe/Copenhagen",
            "0 2 * * *",
            utc(2026, 3, 27, 12),
            utc(2026, 3, 30, 12),
            ["03-28 02:00+0100", "03-29 03:00+0200", "03-30 02:00+0200"],
        ),
    ],
)
def test_dst_fixed_times(
    tz: str, expr: str, start: dt.datetime, end: dt.datetime, expected: list[str]
) -> None:
    assert local(ticks_between(expr, tz, start, end), tz) == expected


def test_hourly_follows_real_time_over_dst_days() -> None:
    # a star in the hour field means every real hour: 23 on the short day, 25 on the long one
    day = "Europe/Copenhagen"
    spring = ticks_between(
        "0 * * * *",
        day,
        utc(2026, 3, 28, 23) - dt.timedelta(seconds=1),
        utc(2026, 3, 29, 22) - dt.timedelta(seconds=1),
    )
    fall = ticks_between(
        "0 * * * *",
        day,
        utc(2026, 10, 24, 22) - dt.timedelta(seconds=1),
        utc(2026, 10, 25, 23) - dt.timedelta(seconds=1),
    )
    assert len(spring) == 23 and len(fall) == 25
    assert len(set(fall)) == 25  # 02:00 CEST and 02:00 CET are distinct instants
    ny = ticks_between(
        "0 * * * *",
        "America/New_York",
        utc(2026, 11, 1, 4) - dt.timedelta(seconds=1),
        utc(2026, 11, 2, 5) - dt.timedelta(seconds=1),
    )
    assert len(ny) == 25


def test_next_after_is_strictly_after_even_in_the_second_pass_of_a_repeated_hour() -> None:
    # 01:15 EST (second pass) on 2026-11-01 is after 01:30 EDT (first pass): next is the day after
    second_pass = dt.datetime(2026, 11, 1, 1, 15, tzinfo=ZoneInfo("America/New_York"), fold=1)
    nxt = next_after("30 1 * * *", "America/New_York", second_pass)
    assert nxt is not None and nxt > second_pass
    assert local([nxt], "America/New_York") == ["11-02 01:30-0500"]


def test_latest_at_or_before_matches_the_forward_schedule() -> None:
    assert latest_at_or_before("0 2 * * *", "UTC", utc(2026, 3, 8, 13)) == utc(2026, 3, 8, 2)
    assert latest_at_or_before("0 2 * * *", "UTC", utc(2026, 3, 8, 2)) == utc(2026, 3, 8, 2)
    assert latest_at_or_before("* * * * *", "UTC", utc(2026, 3, 8, 13, 0, 30)) == utc(2026, 3, 8, 13)
    assert latest_at_or_before("0 0 1 1 *", "UTC", utc(2026, 3, 8)) == utc(2026, 1, 1)
    # in the skipped hour's aftermath the latest tick is the shifted one
    assert latest_at_or_before("30 2 * * *", "Europe/Copenhagen", utc(2026, 3, 29, 1, 30)) == utc(
        2026, 3, 29, 1
    )


@pytest.mark.parametrize(
    "expr",
    ["61 * * * *", "* 24 * * *", "0 2 * *", "0 0 2 * * *", "", "a b c d e", "0 0 30 2 *", "*/0 * * * *"],
)
def test_invalid_cron_names_the_field(expr: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        check_cron(expr)
    assert caught.value.message.startswith(f"schedule: '{expr}' is not a valid cron expression")
    assert caught.value.details[0]["field"] == "schedule"


def test_valid_cron_is_normalised() -> None:
    assert check_cron(" 0  2 * * * ") == "0 2 * * *"
    assert check_cron("*/15 9-17 * * MON-FRI") == "*/15 9-17 * * MON-FRI"


def test_timezones() -> None:
    assert str(check_timezone("Europe/Copenhagen")) == "Europe/Copenhagen"
    for bad in ("Mars/Olympus", "", "../etc/passwd", "/etc/localtime"):
        with pytest.raises(ValidationFailed):
            check_timezone(bad)


def test_describe() -> None:
    assert describe("0 2 * * *") == "At 02:00"
    assert describe("* * * * *") == "Every minute"
    assert describe("0 3 * * 1") == "At 03:00, only on Monday"


@pytest.mark.parametrize(
    "name",
    [
        "Europe",
        "America",
        "x" * 300,
        "localtime",
        "posix/Europe/Paris",
        "right/UTC",
        "../etc/passwd",
        "",
        " UTC",
    ],
)
def test_only_iana_zone_names_are_time_zones(name: str) -> None:
    from skuport.errors import ValidationFailed
    from skuport.scheduling.cron import check_timezone

    with pytest.raises(ValidationFailed) as refused:
        check_timezone(name)
    assert refused.value.details[0]["field"] == "timezone" and len(refused.value.message) < 200
