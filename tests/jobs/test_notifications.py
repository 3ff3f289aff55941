"""Run notifications against real receivers: the scripted HTTP receiver (signatures checked by the
``standardwebhooks`` package) and a real SMTP server (aiosmtpd), through the real run path."""

# ruff: noqa: F811 (the fixtures imported from test_ownership are parameters here)

from __future__ import annotations

import base64
import email
import socket
import threading
from collections.abc import Iterator
from email import policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from standardwebhooks import Webhook

from skuport.config import get_settings
from skuport.db import session_scope
from skuport.jobs import notifications
from skuport.jobs.models import RunNotification
from tests.exporting.destinations import servers
from tests.jobs.test_ownership import ended, env, make, receiver, records, run_now  # noqa: F401 (fixtures)

pytestmark = pytest.mark.usefixtures("records", "env")

SECRET = "whsec_" + base64.b64encode(b"a notification signing key, 32 b").decode()
EVERY = ["run.failed", "run.recovered", "run.succeeded"]


class Mailbox:
    """What the SMTP server received."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[arg-type]
        return "250 OK"


@pytest.fixture
def mailbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Mailbox]:
    """A real SMTP server on loopback, and SKUPORT_SMTP_URL pointing at it."""
    box = Mailbox()
    with socket.socket() as probe:  # a free port (the controller checks it can connect to its own)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("SKUPORT_SMTP_URL", f"smtp://127.0.0.1:{port}?from=feeds@skuport.test")
    get_settings.cache_clear()
    yield box
    controller.stop()
    get_settings.cache_clear()


def _job(client: TestClient, admin: dict[str, str], hook: servers.Receiver, **extra: Any) -> str:
    """A job delivering to ``hook`` (scripted to fail or not) with the notifications given."""
    return make(client, admin, "webhook", {"url": hook.url("/feed"), "maxAttempts": 1}, **extra)


def _sent(run_id: str) -> list[RunNotification]:
    notifications.send_due()
    with session_scope(write=False) as session:
        rows = session.query(RunNotification).filter_by(run_id=run_id).order_by(RunNotification.event).all()
        session.expunge_all()
        return rows


def test_webhook_events_are_signed_and_sent_once_per_run_and_event(
    client: TestClient, admin: dict[str, str], receiver: servers.Receiver
) -> None:
    feed = servers.Receiver()
    try:
        hooks = [{"events": EVERY, "type": "webhook", "url": receiver.url("/events"), "secret": SECRET}]
        job_id = _job(client, admin, feed, notifications=hooks)
        shown = client.get(f"/api/v1/export-jobs/{job_id}", headers=admin).json()["notifications"]
        assert shown[0]["secret"] == "********" and shown[0]["url"] == receiver.url("/events")

        feed.script = [("respond", 400, {}, b"no")]  # the feed is refused: not retried, the run fails
        failed = ended(run_now(client, admin, job_id))
        assert failed.status == "failed"
        assert [(n.event, n.status) for n in _sent(failed.id)] == [("run.failed", "sent")]
        recovered = ended(run_now(client, admin, job_id))
        assert recovered.status == "success", recovered.error
        assert [(n.event, n.status) for n in _sent(recovered.id)] == [
            ("run.recovered", "sent"),
            ("run.succeeded", "sent"),
        ]

        events = []
        for request in receiver.requests:
            payload = Webhook(SECRET).verify(
                request.body, request.headers
            )  # raises if the signature is wrong
            events.append((payload["type"], payload["data"]["runId"]))
        assert sorted(events) == sorted(
            [("run.failed", failed.id), ("run.recovered", recovered.id), ("run.succeeded", recovered.id)]
        )
        assert "refused" in receiver.requests[0].body.decode()  # the run's error travels with it

        # ending the same run again (a second scheduler, a retry) adds nothing, sends nothing
        with session_scope() as session:
            assert notifications.enqueue(session, recovered.id, now=recovered.completed_at) == 0
        assert notifications.send_due() == 0 and len(receiver.requests) == 3

        run = client.get(f"/api/v1/export-jobs/{job_id}/runs/{recovered.id}", headers=admin).json()
        assert {(n["event"], n["status"], n["attempts"]) for n in run["notifications"]} == {
            ("run.recovered", "sent", 1),
            ("run.succeeded", "sent", 1),
        }

        # a PUT that sends the masked secret back keeps the stored one: signatures still verify
        put = client.put(f"/api/v1/export-jobs/{job_id}", json={"notifications": shown}, headers=admin)
        assert put.status_code == 200, put.text
        third = ended(run_now(client, admin, job_id))
        _sent(third.id)
        assert (
            Webhook(SECRET).verify(receiver.requests[-1].body, receiver.requests[-1].headers)["type"]
            == "run.succeeded"
        )
    finally:
        feed.stop()


def test_two_senders_deliver_a_notification_once(
    client: TestClient, admin: dict[str, str], receiver: servers.Receiver
) -> None:
    hooks = [{"events": ["run.succeeded"], "type": "webhook", "url": receiver.url("/events")}]
    feed = servers.Receiver()
    try:
        job_id = _job(client, admin, feed, notifications=hooks)
        run = ended(run_now(client, admin, job_id))
        assert run.status == "success"
        receiver.script = [("sleep", 0.3, 200)]  # a slow receiver: both senders see the row as due
        barrier = threading.Barrier(2)

        def sender() -> None:
            barrier.wait()
            notifications.send_due()

        threads = [threading.Thread(target=sender) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(receiver.requests) == 1
    finally:
        feed.stop()


def test_a_failing_notification_is_retried_recorded_and_never_fails_the_run(
    client: TestClient, admin: dict[str, str], receiver: servers.Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notifications, "BACKOFF_SECONDS", 0.0)  # each retry is due at once
    hooks = [{"events": ["run.succeeded"], "type": "webhook", "url": receiver.url("/events")}]
    feed = servers.Receiver()
    try:
        job_id = _job(client, admin, feed, notifications=hooks)
        receiver.script = [("respond", 503, {}, b"down")] * notifications.MAX_ATTEMPTS
        run = ended(run_now(client, admin, job_id))
        assert run.status == "success"
        # the job's list changes meanwhile: what is pending still goes where it was meant to
        assert (
            client.put(f"/api/v1/export-jobs/{job_id}", json={"notifications": []}, headers=admin).status_code
            == 200
        )
        for attempt in range(1, notifications.MAX_ATTEMPTS + 1):
            notifications.send_due()
            with session_scope(write=False) as session:
                row = session.query(RunNotification).filter_by(run_id=run.id).one()
                assert row.attempts == attempt and "503" in (row.error or "")
        assert row.status == "failed" and len(receiver.requests) == notifications.MAX_ATTEMPTS
        notifications.send_due()
        assert len(receiver.requests) == notifications.MAX_ATTEMPTS  # never a sixth
        shown = client.get(f"/api/v1/export-jobs/{job_id}/runs/{run.id}", headers=admin).json()
        assert shown["status"] == "success" and shown["notifications"][0]["status"] == "failed"
    finally:
        feed.stop()


def test_a_notification_that_cannot_be_recorded_never_undoes_the_run(
    client: TestClient, admin: dict[str, str], receiver: servers.Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> int:
        raise RuntimeError("the stored notification cannot be read")

    monkeypatch.setattr(notifications, "_enqueue", broken)
    hooks = [{"events": ["run.succeeded"], "type": "webhook", "url": receiver.url("/events")}]
    feed = servers.Receiver()
    try:
        run = ended(run_now(client, admin, _job(client, admin, feed, notifications=hooks)))
        assert run.status == "success" and len(feed.requests) == 1  # delivered once, recorded once
    finally:
        feed.stop()


def test_a_masked_secret_is_kept_by_its_url_not_its_place(
    client: TestClient, admin: dict[str, str], receiver: servers.Receiver
) -> None:
    other = "whsec_" + base64.b64encode(b"another key for the second hook!").decode()
    hooks = [
        {"events": ["run.succeeded"], "type": "webhook", "url": receiver.url("/a"), "secret": SECRET},
        {"events": ["run.succeeded"], "type": "webhook", "url": receiver.url("/b"), "secret": other},
    ]
    feed = servers.Receiver()
    try:
        job_id = _job(client, admin, feed, notifications=hooks)
        shown = client.get(f"/api/v1/export-jobs/{job_id}", headers=admin).json()["notifications"]
        put = client.put(f"/api/v1/export-jobs/{job_id}", json={"notifications": shown[1:]}, headers=admin)
        assert put.status_code == 200, put.text
        _sent(ended(run_now(client, admin, job_id)).id)
        assert [r.path for r in receiver.requests] == ["/b"]
        Webhook(other).verify(receiver.requests[0].body, receiver.requests[0].headers)  # b's own secret
        masked = {**shown[0], "url": receiver.url("/c")}
        refused = client.put(f"/api/v1/export-jobs/{job_id}", json={"notifications": [masked]}, headers=admin)
        assert refused.status_code == 422 and "send it in full" in refused.text
    finally:
        feed.stop()


def test_email_names_the_job_the_error_and_what_to_do(
    client: TestClient, admin: dict[str, str], receiver: servers.Receiver, mailbox: Mailbox
) -> None:
    mails = [{"events": ["run.failed"], "type": "email", "to": ["feeds@example.com", "ops@example.com"]}]
    job_id = _job(client, admin, receiver, notifications=mails)
    receiver.script = [("respond", 401, {}, b"bad token")]
    failed = ended(run_now(client, admin, job_id))
    assert failed.status == "failed"
    assert [(n.event, n.status, n.recipient) for n in _sent(failed.id)] == [
        ("run.failed", "sent", "feeds@example.com, ops@example.com")
    ]
    assert len(mailbox.messages) == 1
    message = mailbox.messages[0]
    assert message["From"] == "feeds@skuport.test" and "run failed" in message["Subject"]
    assert sorted(mailbox.envelopes[0].rcpt_tos) == ["feeds@example.com", "ops@example.com"]
    text = message.get_body(("plain",)).get_content()
    assert job_id in text and failed.id in text and "401" in text and "Run now" in text
    assert "<html>" in message.get_body(("html",)).get_content()
    ok = ended(run_now(client, admin, job_id))
    assert ok.status == "success" and _sent(ok.id) == []  # run.succeeded was not asked for


def test_notifications_are_refused_when_they_cannot_be_sent(
    client: TestClient, admin: dict[str, str], receiver: servers.Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SKUPORT_SMTP_URL", raising=False)
    get_settings.cache_clear()
    base = {
        "name": "n",
        "destinationType": "local",
        "destinationConfig": {"path": "n"},
        "format": "csv",
        "schedule": "0 2 * * *",
    }
    for notification, words in (
        ({"events": ["run.failed"], "type": "email", "to": ["a@example.com"]}, "SKUPORT_SMTP_URL"),
        ({"events": ["run.failed"], "type": "webhook"}, "needs url"),
        ({"events": ["run.failed"], "type": "email", "to": ["not an address"]}, "not an email address"),
        ({"events": ["run.exploded"], "type": "webhook", "url": receiver.url()}, "run.failed"),
    ):
        answer = client.post(
            "/api/v1/export-jobs", json={**base, "notifications": [notification]}, headers=admin
        )
        assert answer.status_code == 422, answer.text
        assert words in answer.text, answer.text
    monkeypatch.setenv("SKUPORT_WEBHOOK_ALLOW_PRIVATE", "false")
    monkeypatch.setenv("SKUPORT_ALLOW_PRIVATE_NETWORKS", "false")
    get_settings.cache_clear()
    private = {"events": ["run.failed"], "type": "webhook", "url": receiver.url()}
    answer = client.post("/api/v1/export-jobs", json={**base, "notifications": [private]}, headers=admin)
    assert answer.status_code == 422 and "notifications[0]" in answer.text and "network policy" in answer.text


def test_the_housekeeper_sends_what_is_due_on_its_own_thread(
    client: TestClient, admin: dict[str, str], receiver: servers.Receiver
) -> None:
    from skuport.background import Housekeeper
    from tests.jobs.conftest import wait_until

    hooks = [{"events": ["run.succeeded"], "type": "webhook", "url": receiver.url("/events")}]
    feed = servers.Receiver()
    keeper = Housekeeper(get_settings())
    try:
        run = ended(run_now(client, admin, _job(client, admin, feed, notifications=hooks)))
        assert run.status == "success" and receiver.requests == []
        keeper.start()
        wait_until(lambda: len(receiver.requests) == 1, what="the notification")
    finally:
        keeper.stop()
        feed.stop()


# -- one-off exports ------------------------------------------------------------------------------------
def test_a_one_off_export_tells_a_webhook_when_its_file_is_ready(
    client: TestClient, admin: dict[str, str], receiver: servers.Receiver
) -> None:
    from tests.exports.helpers import run

    hooks = [{"events": ["export.completed"], "type": "webhook", "url": receiver.url("/x"), "secret": SECRET}]
    done = run(client, admin, format="csv", reference="order-42", notifications=hooks)
    assert done["notifications"][0]["secret"] == "********"
    assert notifications.send_due() == 1 and notifications.send_due() == 0  # once
    payload = Webhook(SECRET).verify(receiver.requests[0].body, receiver.requests[0].headers)
    assert payload["type"] == "export.completed"
    data = payload["data"]
    assert (data["exportId"], data["reference"], data["status"]) == (done["id"], "order-42", "completed")
    assert data["downloadPath"] == f"/api/v1/exports/{done['id']}/download" and data["error"] is None
    assert data["sha256"] == done["sha256"] and data["recordCount"] == done["recordCount"]
    shown = client.get(f"/api/v1/exports/{done['id']}", headers=admin).json()["notified"]
    assert [(n["event"], n["status"], n["attempts"]) for n in shown] == [("export.completed", "sent", 1)]


def test_a_one_off_export_that_fails_sends_an_email_saying_why(
    client: TestClient, admin: dict[str, str], mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    from skuport.errors import ValidationFailed
    from skuport.exporting import pipeline
    from tests.exports.helpers import create, wait

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValidationFailed("the catalogue changed under the export: attribute 'price' is gone")

    mails = [{"events": ["export.completed", "export.failed"], "type": "email", "to": ["me@example.com"]}]
    monkeypatch.setattr(pipeline, "run_export", broken)
    created = create(client, admin, format="csv", notifications=mails)
    failed = wait(client, admin, created["id"])
    assert failed["status"] == "failed", failed
    assert notifications.send_due() == 1
    (message,) = mailbox.messages
    assert created["id"] in message["Subject"] and "failed" in message["Subject"]
    text = message.get_body(("plain",)).get_content()
    assert "'price' is gone" in text and "create the export again" in text
    assert [
        n["event"] for n in client.get(f"/api/v1/exports/{failed['id']}", headers=admin).json()["notified"]
    ] == ["export.failed"]


def test_a_one_off_export_takes_only_its_own_events(client: TestClient, admin: dict[str, str]) -> None:
    hooks = [{"events": ["run.failed"], "type": "webhook", "url": "https://hooks.example.com/x"}]
    response = client.post("/api/v1/exports", json={"format": "csv", "notifications": hooks}, headers=admin)
    assert response.status_code == 422, response.text
    assert "export.completed, export.failed" in response.json()["error"]["message"]
    job_hooks = [{"events": ["export.completed"], "type": "webhook", "url": "https://hooks.example.com/x"}]
    body = {
        "name": "wrong events",
        "destinationType": "local",
        "destinationConfig": {"path": "x"},
        "format": "csv",
        "schedule": "0 0 1 1 *",
        "filenameTemplate": "x.csv",
        "notifications": job_hooks,
    }
    refused = client.post("/api/v1/export-jobs", json=body, headers=admin)
    assert refused.status_code == 422 and "run.failed" in refused.json()["error"]["message"]


def test_only_editors_make_a_one_off_export_notify(client: TestClient, admin: dict[str, str]) -> None:
    from tests.factories import make_user

    viewer = make_user("user-viewer", "role-viewer")
    hooks = [{"events": ["export.completed"], "type": "webhook", "url": "https://hooks.example.com/x"}]
    refused = client.post("/api/v1/exports", json={"format": "csv", "notifications": hooks}, headers=viewer)
    assert refused.status_code == 403 and "notifications" in refused.json()["error"]["message"]
    assert client.post("/api/v1/exports", json={"format": "csv"}, headers=viewer).status_code == 202
