"""The console over HTTP (the app in-process, the suite's real database): logins, CSRF, roles, forms."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from skuport.auth.logins import set_password
from skuport.auth.models import LoginSession, User
from skuport.db import session_scope
from skuport.jobs.models import ExportJob

PASSWORD = "correct horse battery"


def _password(user_id: str, roles: list[str] | None = None) -> None:
    with session_scope() as session:
        user = session.get(User, user_id)
        if user is None:
            user = User(id=user_id, name=user_id, role_ids=roles or [], active=True)
            session.add(user)
            session.flush()
        set_password(session, user=user, password=PASSWORD)


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def login(
    client: TestClient, user: str = "user-admin", password: str = PASSWORD, next_path: str = "/console"
):
    page = client.get("/console/login")
    return client.post(
        "/console/login",
        data={"username": user, "password": password, "csrf": _csrf(page.text), "next": next_path},
        follow_redirects=False,
    )


@pytest.fixture
def demo(world: None) -> None:
    """The seeds' records and their job (expjob-nightly-feed) on top of the seed world."""
    from skuport.demo import load_seed_jobs, load_seed_records

    with session_scope() as session:
        load_seed_records(session)
        load_seed_jobs(session)


@pytest.fixture
def console(demo: None, client: TestClient) -> Iterator[TestClient]:
    """A client logged in as user-admin."""
    _password("user-admin")
    assert login(client).status_code == 303
    yield client


def test_pages_need_a_login_and_come_back_after_it(world: None, client: TestClient) -> None:
    _password("user-admin")
    answer = client.get("/console/jobs?status=failing", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/login?next=/console/jobs%3Fstatus%3Dfailing"

    answer = login(client, next_path="/console/jobs?status=failing")
    assert answer.status_code == 303 and answer.headers["location"] == "/console/jobs?status=failing"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/console" in cookie
    assert client.get("/console/jobs").status_code == 200


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "/api/v1"]
)
def test_a_login_never_redirects_off_the_console(world: None, client: TestClient, target: str) -> None:
    _password("user-admin")
    assert login(client, next_path=target).headers["location"] == "/console"


def test_wrong_passwords_are_refused_then_throttled(world: None, client: TestClient, configure) -> None:
    configure(console_login_attempts=3, console_login_window=60)
    _password("user-admin")
    for _ in range(3):
        answer = login(client, password="wrong password!")
        assert answer.status_code == 401 and "Wrong user name or password" in answer.text
    answer = login(client)  # even the right password waits now
    assert answer.status_code == 429 and int(answer.headers["retry-after"]) > 0
    assert "Too many failed logins" in answer.text
    assert login(client, user="nobody").status_code == 429  # the address is throttled too


def test_unknown_users_and_users_without_a_password_cannot_log_in(world: None, client: TestClient) -> None:
    assert login(client, user="user-admin").status_code == 401  # no password set yet
    assert login(client, user="user-ghost").status_code == 401


def test_the_login_form_needs_its_own_csrf_token(world: None, client: TestClient) -> None:
    _password("user-admin")
    answer = client.post(
        "/console/login",
        data={"username": "user-admin", "password": PASSWORD, "csrf": "x"},
        follow_redirects=False,
    )
    assert answer.status_code == 403 and "skuport_session" not in answer.headers.get("set-cookie", "")


def test_every_form_needs_the_csrf_token(console: TestClient) -> None:
    assert console.post("/console/jobs/expjob-nightly-feed/pause", data={}).status_code == 403
    assert console.post("/console/jobs/expjob-nightly-feed/pause", data={"csrf": "forged"}).status_code == 403
    page = console.get("/console/jobs/expjob-nightly-feed")
    cross = console.post(
        "/console/jobs/expjob-nightly-feed/pause",
        data={"csrf": _csrf(page.text)},
        headers={"Origin": "https://evil.example"},
    )
    assert cross.status_code == 403
    with session_scope() as session:
        assert session.get(ExportJob, "expjob-nightly-feed").active  # nothing happened
    ok = console.post(
        "/console/jobs/expjob-nightly-feed/pause", data={"csrf": _csrf(page.text)}, follow_redirects=False
    )
    assert ok.status_code == 303
    with session_scope() as session:
        assert not session.get(ExportJob, "expjob-nightly-feed").active


def test_logout_ends_the_session_for_every_copy_of_the_cookie(console: TestClient) -> None:
    cookie = console.cookies.get("skuport_session")
    page = console.get("/console")
    assert (
        console.post("/console/logout", data={"csrf": _csrf(page.text)}, follow_redirects=False).status_code
        == 303
    )
    console.cookies.set("skuport_session", cookie, path="/console")
    assert console.get("/console", follow_redirects=False).status_code == 303
    with session_scope() as session:
        assert session.query(LoginSession).count() == 0


def test_an_idle_session_expires(console: TestClient, configure) -> None:
    configure(console_session_idle=600)
    with session_scope() as session:
        for row in session.query(LoginSession):
            row.last_seen_at = row.last_seen_at - dt.timedelta(seconds=601)
    assert console.get("/console", follow_redirects=False).status_code == 303


def test_a_tampered_cookie_opens_nothing(world: None, client: TestClient) -> None:
    client.cookies.set("skuport_session", "abc.def", path="/console")
    assert client.get("/console", follow_redirects=False).status_code == 303


def test_a_viewer_sees_no_write_controls_and_a_forged_post_is_refused(demo: None, client: TestClient) -> None:
    _password("user-viewer", ["role-viewer"])
    assert login(client, user="user-viewer").status_code == 303
    page = client.get("/console/jobs/expjob-nightly-feed")
    assert page.status_code == 200
    for control in ("Run now", "Pause", "Edit", "Delete"):
        assert f">{control}<" not in page.text and f">{control}…<" not in page.text
    assert "New job" not in client.get("/console/jobs").text
    csrf = _csrf(page.text)  # the logout form's token: a viewer has one, which must not be enough
    for action in ("pause", "run", "delete", "test"):
        answer = client.post(f"/console/jobs/expjob-nightly-feed/{action}", data={"csrf": csrf})
        assert answer.status_code == 403, action
        assert "needs one of the roles" in answer.text
    assert client.get("/console/jobs/new").status_code == 403
    with session_scope() as session:
        assert session.get(ExportJob, "expjob-nightly-feed") is not None


def test_a_job_form_shows_errors_beside_fields_then_creates_the_job(console: TestClient) -> None:
    form = console.get("/console/jobs/new?type=local")
    data = {
        "csrf": _csrf(form.text),
        "destinationType": "local",
        "name": "Nightly DK",
        "format": "csv",
        "schedule": "0 25 * * *",
        "timezone": "Europe/Copenhagen",
        "destinationConfig.path": "../out",
        "active": "true",
        "includeVariants": "true",
        "filters": "{not json",
    }
    refused = console.post("/console/jobs/new", data=data)
    assert refused.status_code == 422
    assert 'id="filters-error"' in refused.text and "not valid JSON" in refused.text
    data["filters"] = '{"brand": "Ma Marque"}'
    refused = console.post("/console/jobs/new", data=data)
    assert refused.status_code == 422
    assert re.search(r'id="schedule-error">[^<]*hour', refused.text)
    assert 'id="destinationConfig-path-error"' in refused.text
    assert 'value="Nightly DK"' in refused.text  # what was typed stays
    data.update(
        schedule="0 2 * * *",
        headerLanguage="seg-da",
        includes="categories",
        lifecycleStateIds="state-draft",
        **{"destinationConfig.path": "dk"},
    )
    created = console.post("/console/jobs/new", data=data, follow_redirects=False)
    assert created.status_code == 303
    job_page = console.get(created.headers["location"])
    assert "Job &#39;Nightly DK&#39; created." in job_page.text
    with session_scope() as session:
        job = session.query(ExportJob).filter_by(name="Nightly DK").one()
        assert (job.timezone, job.filters, job.active) == ("Europe/Copenhagen", {"brand": "Ma Marque"}, True)
        assert (job.header_language, job.includes, job.lifecycle_state_ids) == (
            "seg-da",
            ["categories"],
            ["state-draft"],
        )


def test_editing_keeps_secrets_that_are_never_sent_to_the_browser(
    console: TestClient, moto_endpoint: str
) -> None:
    form = console.get("/console/jobs/new?type=s3")
    data = {
        "csrf": _csrf(form.text),
        "destinationType": "s3",
        "name": "To S3",
        "format": "jsonl",
        "schedule": "0 3 * * *",
        "timezone": "UTC",
        "destinationConfig.bucket": "feeds",
        "destinationConfig.endpointUrl": moto_endpoint,
        "destinationConfig.accessKeyId": "AKIDSECRET123",
        "destinationConfig.secretAccessKey": "very-secret-key-42",
        "destinationConfig.timeoutSeconds": "30",
    }
    created = console.post("/console/jobs/new", data=data, follow_redirects=False)
    assert created.status_code == 303, created.text
    job_url = created.headers["location"]
    for page in (console.get(job_url), console.get(f"{job_url}/edit")):
        assert "very-secret-key-42" not in page.text and "AKIDSECRET123" not in page.text
    edit = console.get(f"{job_url}/edit")
    data.update(csrf=_csrf(edit.text), name="To S3 renamed")
    data.pop("destinationConfig.accessKeyId")
    data.pop("destinationConfig.secretAccessKey")  # left empty: keep the stored ones
    assert console.post(f"{job_url}/edit", data=data, follow_redirects=False).status_code == 303
    from skuport.jobs.service import decrypted_destination_config

    with session_scope() as session:
        job = session.query(ExportJob).filter_by(name="To S3 renamed").one()
        config = decrypted_destination_config(job)
        assert (config["accessKeyId"], config["secretAccessKey"]) == ("AKIDSECRET123", "very-secret-key-42")


def test_the_cron_field_says_the_schedule_in_words_and_the_next_runs(console: TestClient) -> None:
    answer = console.get("/console/cron?schedule=30+6+*+*+1-5&timezone=Europe/Copenhagen")
    assert "At 06:30" in answer.text and "Monday through Friday" in answer.text
    assert answer.text.count("<li>") == 5 and ("CET" in answer.text or "CEST" in answer.text)
    assert "day-of-week" in console.get("/console/cron?schedule=0+2+*+*+9").text


def test_records_switch_language_and_show_the_danish_name(console: TestClient) -> None:
    english = console.get("/console/records?q=windbreaker")
    assert "Coastal Windbreaker" in english.text and "1 record;" not in english.text
    danish = console.get("/console/records?q=windbreaker&scope=dim-language:seg-da")
    assert "Kyst Vindjakke" in danish.text
    record = console.get("/console/records/ent-xK9mP2vL?scope=dim-language:seg-da")
    assert re.search(r'data-alias="product-name">Kyst Vindjakke<', record.text)
    assert "Resolved (Danish)" in record.text
    # segment ids repeat across dimensions (seg-de: German and Germany): each scope by its own name
    assert "<strong>German</strong>" in record.text and "<strong>Germany</strong>" in record.text
    assert "Completeness" in record.text and "Audit trail" in record.text


def test_console_errors_are_pages_not_json(console: TestClient) -> None:
    missing = console.get("/console/jobs/expjob-nope")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
    assert "Export job &#39;expjob-nope&#39;" in missing.text or "expjob-nope" in missing.text
    unknown = console.get("/console/jobs?colour=red")
    assert unknown.status_code == 400 and "colour" in unknown.text
    bad = console.get("/console/jobs/expjob-nightly-feed?limit=0")
    assert bad.status_code == 422 and "<html" in bad.text


def test_pages_forbid_framing_and_foreign_scripts(console: TestClient) -> None:
    page = console.get("/console/jobs")
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
    assert "<script>" not in page.text and "style=" not in page.text  # nothing inline for the policy to allow


def test_a_polled_history_reloads_the_page_once_its_run_has_ended(console: TestClient) -> None:
    polled = console.get("/console/jobs/expjob-nightly-feed/runs?live=true", headers={"HX-Request": "true"})
    assert polled.status_code == 200 and polled.headers["hx-refresh"] == "true"
    assert "hx-refresh" not in console.get("/console/jobs/expjob-nightly-feed/runs").headers


def test_expired_logins_are_swept_at_the_next_login(console: TestClient, configure) -> None:
    configure(console_session_max=3600)
    with session_scope() as session:
        for row in session.query(LoginSession):
            row.created_at = row.created_at - dt.timedelta(hours=2)
    console.cookies.clear()
    assert login(console).status_code == 303
    with session_scope() as session:
        assert session.query(LoginSession).count() == 1  # the old one went, the new one is there


def test_editing_a_job_whose_optional_secrets_were_never_set(console: TestClient) -> None:
    """A webhook job without an HMAC secret, edited without touching anything: saved, still no secret."""
    form = console.get("/console/jobs/new?type=webhook")
    data = {
        "csrf": _csrf(form.text),
        "destinationType": "webhook",
        "name": "Hook",
        "format": "jsonl",
        "schedule": "0 3 * * *",
        "destinationConfig.url": "https://hooks.example.com/in",
        "destinationConfig.method": "POST",
        "destinationConfig.timeoutSeconds": "30",
        "destinationConfig.maxAttempts": "5",
        "globalOnly": "true",
    }
    created = console.post("/console/jobs/new", data=data, follow_redirects=False)
    assert created.status_code == 303, created.text
    edit = console.get(f"{created.headers['location']}/edit")
    assert 'name="globalOnly" value="true" checked' in edit.text  # {} stays {}
    data.update(csrf=_csrf(edit.text), name="Hook renamed", timeoutSeconds="0")
    refused = console.post(f"{created.headers['location']}/edit", data=data)
    assert refused.status_code == 422 and 'id="timeoutSeconds-error"' in refused.text  # 0 is not "none"
    data.pop("timeoutSeconds")
    saved = console.post(f"{created.headers['location']}/edit", data=data, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    with session_scope() as session:
        job = session.query(ExportJob).filter_by(name="Hook renamed").one()
        assert "secret" not in job.destination_config and job.dimension_scope == {}


def test_paging_keeps_a_search_with_special_characters(console: TestClient) -> None:
    from skuport.demo_synthetic import generate

    generate(count=200, seed=3, echo=lambda line: None)
    page = console.get("/console/records", params={"q": " ", "schema": "schema-apparel"})  # names have one
    assert page.status_code == 200
    assert 'href="/console/records?q=+&amp;schema=schema-apparel&amp;offset=50"' in page.text  # encoded


def test_a_job_form_takes_columns_a_dialect_and_a_column_per_segment_and_keeps_them(
    console: TestClient,
) -> None:
    form = console.get("/console/jobs/new?type=local")
    assert "each, a column per segment" in form.text
    data = {
        "csrf": _csrf(form.text),
        "destinationType": "local",
        "name": "Partner feed",
        "format": "csv",
        "schedule": "0 2 * * *",
        "destinationConfig.path": "partner",
        "includeVariants": "true",
        "columns": '[{"header": "ID", "field": "id"}, {"header": "title", "attribute": "nope"}]',
        "csv": '{"delimiter": ";", "decimalSeparator": ","}',
    }
    refused = console.post("/console/jobs/new", data=data)
    assert refused.status_code == 422
    assert re.search(r'id="columns-error">columns\[1\]: [^<]*nope', refused.text.replace("&#39;", "'"))
    columns = [
        {"header": "ID", "field": "id"},
        {"header": "title_da", "attribute": "product-name", "scope": {"dim-language": "seg-da"}},
    ]
    data["columns"] = json.dumps(columns)
    created = console.post("/console/jobs/new", data=data, follow_redirects=False)
    assert created.status_code == 303, created.text
    edit = console.get(f"{created.headers['location']}/edit")
    data.update(
        csrf=_csrf(edit.text), columns=_textarea(edit.text, "columns"), csv=_textarea(edit.text, "csv")
    )
    saved = console.post(f"{created.headers['location']}/edit", data=data, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    with session_scope() as session:
        job = session.query(ExportJob).filter_by(name="Partner feed").one()
        assert job.columns == columns
        assert (job.csv["delimiter"], job.csv["decimal_separator"]) == (";", ",")

    # a column per language: the select offers the list, and an edit keeps it
    data.update(
        columns="", csv="", fields="sku, product-name", **{"dimensionScope.dim-language": "seg-da,seg-en"}
    )
    saved = console.post(f"{created.headers['location']}/edit", data=data, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    edit = console.get(f"{created.headers['location']}/edit")
    assert re.search(r'<option value="seg-da,seg-en" selected>', edit.text)
    with session_scope() as session:
        job = session.query(ExportJob).filter_by(name="Partner feed").one()
        assert (job.columns, job.csv) == (None, None)
        assert job.dimension_scope == {"dim-language": ["seg-da", "seg-en"]}

    # a list of one segment stays a list (its column is named product-name-seg-da) through an edit
    data.update(csrf=_csrf(edit.text), **{"dimensionScope.dim-language": "seg-da,"})
    assert (
        console.post(f"{created.headers['location']}/edit", data=data, follow_redirects=False).status_code
        == 303
    )
    edit = console.get(f"{created.headers['location']}/edit")
    assert '<option value="seg-da," selected>' in edit.text
    data["csrf"] = _csrf(edit.text)
    assert (
        console.post(f"{created.headers['location']}/edit", data=data, follow_redirects=False).status_code
        == 303
    )
    with session_scope() as session:
        job = session.query(ExportJob).filter_by(name="Partner feed").one()
        assert job.dimension_scope == {"dim-language": ["seg-da"]}


def _textarea(html: str, name: str) -> str:
    """What a textarea of the page holds, unescaped."""
    import html as markup

    found = re.search(rf'<textarea[^>]*name="{name}"[^>]*>(.*?)</textarea>', html, re.S)
    assert found, f"no textarea {name}"
    return markup.unescape(found.group(1))


def test_a_job_form_splits_files_with_a_manifest_and_an_edit_keeps_it(console: TestClient) -> None:
    form = console.get("/console/jobs/new?type=local")
    assert "Rows per file" in form.text and "Deliver a manifest last" in form.text
    data = {
        "csrf": _csrf(form.text),
        "destinationType": "local",
        "name": "Marketplace parts",
        "format": "csv",
        "schedule": "0 2 * * *",
        "destinationConfig.path": "parts",
        "maxRecordsPerFile": "0",
        "manifest": "true",
    }
    refused = console.post("/console/jobs/new", data=data)
    assert refused.status_code == 422 and 'id="maxRecordsPerFile-error"' in refused.text
    data["maxRecordsPerFile"] = "50000"
    created = console.post("/console/jobs/new", data=data, follow_redirects=False)
    assert created.status_code == 303, created.text
    edit = console.get(f"{created.headers['location']}/edit")
    assert re.search(r'name="maxRecordsPerFile"[^>]*value="50000"', edit.text)
    data.update(csrf=_csrf(edit.text), maxRecordsPerFile="")
    del data["manifest"]
    saved = console.post(f"{created.headers['location']}/edit", data=data, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    with session_scope() as session:
        job = session.query(ExportJob).filter_by(name="Marketplace parts").one()
        assert (job.max_records_per_file, job.manifest) == (None, False)


def test_a_job_form_edits_notifications_and_keeps_a_masked_secret(console: TestClient) -> None:
    form = console.get("/console/jobs/new?type=local")
    hooks = [
        {
            "events": ["run.failed"],
            "type": "webhook",
            "url": "https://hooks.example.com/a",
            "secret": "s3cr3t-key",
        }
    ]
    data = {
        "csrf": _csrf(form.text),
        "destinationType": "local",
        "name": "Told feed",
        "format": "csv",
        "schedule": "0 2 * * *",
        "destinationConfig.path": "told",
        "notifications": '[{"events": ["export.completed"], "type": "webhook", "url": "https://h.example.com"}]',
    }
    refused = console.post("/console/jobs/new", data=data)
    assert refused.status_code == 422 and 'id="notifications-error"' in refused.text
    data["notifications"] = json.dumps(hooks)
    created = console.post("/console/jobs/new", data=data, follow_redirects=False)
    assert created.status_code == 303, created.text
    edit = console.get(f"{created.headers['location']}/edit")
    shown = _textarea(edit.text, "notifications")
    assert "s3cr3t-key" not in edit.text and '"secret": "********"' in shown
    data.update(csrf=_csrf(edit.text), notifications=shown)  # saved as shown: the secret is kept
    assert (
        console.post(f"{created.headers['location']}/edit", data=data, follow_redirects=False).status_code
        == 303
    )
    from skuport.secrets import decrypt_value

    with session_scope() as session:
        job = session.query(ExportJob).filter_by(name="Told feed").one()
        assert decrypt_value(job.notifications[0]["secret"]) == "s3cr3t-key"
    data.update(csrf=_csrf(console.get(f"{created.headers['location']}/edit").text), notifications="")
    assert (
        console.post(f"{created.headers['location']}/edit", data=data, follow_redirects=False).status_code
        == 303
    )
    with session_scope() as session:
        assert not session.query(ExportJob).filter_by(name="Told feed").one().notifications


def test_the_run_history_lists_a_split_run_s_parts(console: TestClient) -> None:
    import datetime as dt

    from skuport.jobs.models import ExportRun

    now = dt.datetime.now(dt.UTC)
    parts = [
        {
            "name": f"feed-00{i}.csv",
            "path": f"s3://b/feed-00{i}.csv",
            "recordCount": 50_000,
            "byteSize": 2048,
            "sha256": "0" * 64,
            "filename": f"feed-00{i}.csv",
        }
        for i in (1, 2)
    ]
    with session_scope() as session:
        session.add(
            ExportRun(
                id="run-20261203-020000-parts",
                job_id="expjob-nightly-feed",
                status="success",
                trigger="schedule",
                attempt=1,
                scheduled_for=now,
                started_at=now,
                completed_at=now,
                record_count=100_000,
                file_size=4096,
                destination_path="s3://b/feed.manifest.json",
                files=[*parts, {"filename": "feed.manifest.json", "manifest": True}],
            )
        )
    page = console.get("/console/jobs/expjob-nightly-feed/runs").text
    assert "<summary>2 parts</summary>" in page and "feed-002.csv: 50,000 records" in page
    assert "feed.manifest.json" in page  # the destination: the manifest
