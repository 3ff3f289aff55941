"""File names from filenameTemplate: placeholders in the job's time zone; templates that escape refused."""

from __future__ import annotations

import datetime as dt

import pytest

from skuport.exporting.destinations import render_filename, validate_filename_template
from skuport.exporting.destinations.base import DestinationConfigError


def _render(template: str, when: dt.datetime, tz: str = "UTC") -> str:
    return render_filename(
        template, scheduled_for=when, tz=tz, job_id="expjob-nightly-feed", run_id="run-20260308-020000"
    )


def test_seed_template() -> None:
    when = dt.datetime(2026, 3, 8, 2, 0, tzinfo=dt.UTC)
    assert _render("products-{date}.csv.gz", when) == "products-2026-03-08.csv.gz"


def test_all_placeholders() -> None:
    when = dt.datetime(2026, 3, 8, 2, 0, 5, tzinfo=dt.UTC)
    assert _render("{jobId}/{date}/{datetime}-{runId}.json", when) == (
        "expjob-nightly-feed/2026-03-08/20260308T020005-run-20260308-020000.json"
    )


def test_date_is_taken_in_the_jobs_time_zone() -> None:
    late_utc = dt.datetime(2026, 3, 7, 23, 30, tzinfo=dt.UTC)
    assert _render("{date}", late_utc, "Europe/Copenhagen") == "2026-03-08"
    assert _render("{datetime}", late_utc, "Europe/Copenhagen") == "20260308T003000"
    assert _render("{date}", late_utc, "America/New_York") == "2026-03-07"
    assert _render("{date}", dt.datetime(2026, 3, 7, 23, 30), "UTC") == "2026-03-07", "naive means UTC"


def test_same_scheduled_time_gives_the_same_name() -> None:
    when = dt.datetime(2026, 3, 8, 2, 0, tzinfo=dt.UTC)
    assert _render("p-{datetime}.csv", when) == _render("p-{datetime}.csv", when)


def test_unknown_time_zone_is_a_422() -> None:
    with pytest.raises(DestinationConfigError, match="Unknown time zone 'Mars/Base'"):
        _render("{date}", dt.datetime(2026, 3, 8, tzinfo=dt.UTC), "Mars/Base")


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("../products.csv", "'..'"),
        ("feeds/../../etc/passwd", "'..'"),
        ("/etc/cron.d/x", "absolute"),
        ("feeds\\products.csv", "backslashes"),
        ("products\x00.csv", "NUL"),
        ("products-{sku}.csv", "unknown placeholder {sku}"),
        ("products-{}.csv", "unknown placeholder {}"),
        ("products-{date.year}.csv", "unknown placeholder {date.year}"),
        ("products-{date:%Y}.csv", "takes no format"),
        ("products-{date!r}.csv", "takes no format"),
        ("products-{date.csv", "unbalanced"),
        ("feeds//products.csv", "empty or '.'"),
        ("feeds/./products.csv", "empty or '.'"),
        ("feeds/", "name a file"),
    ],
)
def test_unsafe_or_unknown_templates_are_refused(template: str, reason: str) -> None:
    with pytest.raises(DestinationConfigError) as info:
        validate_filename_template(template)
    assert info.value.status_code == 422
    assert reason in info.value.message
    assert info.value.details[0]["field"] == "filenameTemplate"


def test_subfolders_and_literal_braces_are_fine() -> None:
    assert validate_filename_template("daily/{date}/products.csv") == "daily/{date}/products.csv"
    assert _render("x-{{literal}}-{date}.csv", dt.datetime(2026, 3, 8, tzinfo=dt.UTC)) == (
        "x-{literal}-2026-03-08.csv"
    )
