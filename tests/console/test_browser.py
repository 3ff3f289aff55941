"""The console in headless Chromium through a real `skuport serve`: a PIM team's day, every page checked by
axe-core for serious or critical accessibility violations, and screenshots at 1280 px and 390 px."""

from __future__ import annotations

import csv
import gzip
import io
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live import SKUPORT, LiveServer, suite_server

playwright = pytest.importorskip("playwright.sync_api")

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
AXE = ROOT / ".cache" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = ROOT / ".cache" / "screenshots"
PASSWORD = "console-test-password"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    """A live server with the demo world, a console password for user-admin and a viewer."""
    if not CHROMIUM.exists() or not AXE.exists():
        pytest.fail("chromium or axe-core missing: run scripts/test-deps.sh (make test does)")
    with suite_server({"SKUPORT_RUN_HEARTBEAT_INTERVAL": "0.5"}) as live:

        def cli(*args: str, stdin: str | None = None) -> None:
            subprocess.run(
                [*SKUPORT, *args],
                env=live.env,
                input=stdin,
                text=True,
                check=True,
                capture_output=True,
                timeout=60,
            )

        cli("user", "password", "user-admin", stdin=PASSWORD + "\n")
        cli("user", "create", "user-watcher", "--role", "role-viewer", "--name", "Watcher")
        cli("user", "password", "user-watcher", stdin=PASSWORD + "\n")
        yield live


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


def _axe(page: object, name: str) -> None:
    """No serious or critical axe-core violation on the page as it is now."""
    # served as if from the console's own origin, so the pages' Content-Security-Policy stays in force
    origin = "/".join(page.url.split("/")[:3])
    page.route(
        f"{origin}/console/static/axe-under-test.js",
        lambda route: route.fulfill(path=str(AXE), content_type="text/javascript"),
    )
    page.add_script_tag(url=f"{origin}/console/static/axe-under-test.js")
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes'][:3]]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, f"accessibility violations on {name}:\n" + "\n".join(bad)


def _shot(page: object, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _check(page: object, name: str) -> None:
    _axe(page, name)
    _shot(page, name)


def _login(page: object, url: str, user: str) -> None:
    page.goto(f"{url}/console")
    assert "/console/login" in page.url
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{url}/console")


def _nav(page: object, name: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True).click()


def _rows(data: bytes) -> list[list[str]]:
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


def test_a_pim_teams_day_in_the_console(server: LiveServer, browser: object) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    url = server.url

    page.goto(f"{url}/console/login")
    _check(page, "login")
    _login(page, url, "user-admin")
    _check(page, "home")

    # a new feed through the form: a field error first, beside its field
    _nav(page, "Feeds")
    page.get_by_role("link", name="New job").click()
    page.get_by_label(re.compile("^Name")).fill("Browser feed")
    page.get_by_label("Cron expression").fill("0 25 * * *")
    page.get_by_label("Fields").fill("sku, product-name, price")
    page.get_by_label("Language").select_option(label="Danish")
    page.get_by_label("Market").select_option(label="Denmark")
    page.get_by_label("Path", exact=True).fill("browser")
    page.get_by_role("button", name="Create job").click()
    error = page.locator("#schedule-error")
    assert "hour" in error.inner_text()
    assert page.get_by_label("Cron expression").get_attribute("aria-invalid") == "true"
    _check(page, "job-form-errors")
    page.get_by_label("Cron expression").fill("15 4 * * *")
    page.locator("#cron-preview li").first.wait_for()  # the schedule in words and its next runs, as you type
    assert "04:15" in page.locator("#cron-preview").inner_text()
    page.get_by_role("button", name="Create job").click()
    page.wait_for_url(f"{url}/console/jobs/expjob-*")
    job_url = page.url
    assert "Job 'Browser feed' created." in page.locator(".flash").inner_text()

    # run it now and watch the history (htmx polls it) reach success, then download the file
    page.get_by_role("button", name="Run now").click()
    page.locator("#runs tr.run-success").first.wait_for(timeout=60_000)
    _check(page, "job")
    with page.expect_download() as download:
        page.locator("#runs tr.run-success").first.get_by_role("link", name="Download").click()
    rows = _rows(Path(download.value.path()).read_bytes())
    assert rows[0] == ["sku", "product-name", "price"] and len(rows) > 1
    assert "Kyst Vindjakke" in [row[1] for row in rows[1:]]

    # pause and resume (pause asks first)
    page.get_by_role("button", name="Pause").click()
    page.wait_for_url(job_url)
    assert "paused" in page.locator(".flash").inner_text()
    page.get_by_role("button", name="Resume").click()
    page.wait_for_url(job_url)
    assert "resumed" in page.locator(".flash").inner_text()

    # the feeds list and the morning check
    page.goto(f"{url}/console/jobs")
    assert page.get_by_role("link", name="Browser feed").is_visible()
    _check(page, "jobs")
    page.goto(f"{url}/console/runs?status=success")
    assert page.get_by_role("link", name="Browser feed").first.is_visible()
    _check(page, "runs")
    page.goto(f"{job_url}/edit")
    _check(page, "job-edit")
    page.goto(f"{job_url}/delete")
    _check(page, "job-delete")
    page.goto(f"{url}/console/jobs/expjob-does-not-exist")
    assert page.get_by_role("heading", name="Not found").is_visible()
    _check(page, "not-found")

    # a one-off export, downloaded when it completes
    _nav(page, "Exports")
    page.get_by_label("Fields").fill("sku, price")
    page.get_by_label("Market").select_option(label="Germany")
    page.get_by_role("button", name="Start export").click()
    page.locator("#exports a", has_text="Download").first.wait_for(timeout=60_000)
    _check(page, "exports")
    with page.expect_download() as download:
        page.locator("#exports a", has_text="Download").first.click()
    rows = _rows(Path(download.value.path()).read_bytes())
    assert rows[0] == ["sku", "price"] and len(rows) > 1

    # records: switch the language and see the Danish name
    _nav(page, "Records")
    page.get_by_label("Search").fill("windbreaker")
    page.get_by_role("button", name="Show").click()
    assert page.get_by_role("cell", name="Coastal Windbreaker").first.is_visible()
    page.get_by_label("Language").select_option(label="Danish")
    page.get_by_role("button", name="Show").click()
    assert page.get_by_role("cell", name="Kyst Vindjakke").first.is_visible()
    _check(page, "records")
    page.get_by_role("link", name="ent-xK9mP2vL").click()
    assert page.locator('td[data-alias="product-name"]').inner_text() == "Kyst Vindjakke"
    _check(page, "record")

    # a form without its CSRF token is refused, even with the session cookie
    refused = page.request.post(f"{job_url}/pause", form={})
    assert refused.status == 403

    # readable at 390 px: nothing wider than the screen but the tables' own scroll boxes
    page.set_viewport_size({"width": 390, "height": 844})
    for path in ("/console", job_url.removeprefix(url), "/console/records"):
        page.goto(url + path)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390 + 1, path
    _shot(page, "records-390")
    page.goto(job_url)
    _shot(page, "job-390")
    page.set_viewport_size({"width": 1280, "height": 900})

    # logout ends the session
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(f"{url}/console/login")
    page.goto(f"{url}/console/jobs")
    assert "/console/login" in page.url
    context.close()


def test_a_viewer_sees_no_write_buttons_and_a_forged_post_is_refused(
    server: LiveServer, browser: object
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    _login(page, server.url, "user-watcher")
    page.goto(f"{server.url}/console/jobs/expjob-nightly-feed")
    assert page.get_by_role("heading", level=1).inner_text()
    for name in ("Run now", "Pause", "Resume", "Test connection", "Edit", "Delete…"):
        assert page.get_by_role("button", name=name).count() == 0
        assert page.get_by_role("link", name=name).count() == 0
    page.goto(f"{server.url}/console/jobs")
    assert page.get_by_role("link", name="New job").count() == 0
    csrf = page.locator('input[name="csrf"]').first.get_attribute("value")
    forged = page.request.post(f"{server.url}/console/jobs/expjob-nightly-feed/run", form={"csrf": csrf})
    assert forged.status == 403 and "needs one of the roles" in forged.text()
    context.close()
