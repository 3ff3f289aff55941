"""Notifications of a job's runs: a signed webhook event or an email when a run fails, recovers or succeeds.

An outbox: the transaction that ends a run (its success recorded, or its last failure) adds one row per
(scheduled run, event, notification) to ``run_notifications``, unique on the first attempt's run id, the
event and the notification's place in the job's list, so retries and any number of schedulers never
notify twice. Every scheduler process sends what is due on a thread of its own (:func:`send_due`, from
:class:`skuport.background.Housekeeper`), claiming each row first; a failed send is retried with backoff
and recorded on the run, and never fails the run itself.

Webhook events follow Standard Webhooks (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``)
and go through the webhook destination's client: the network guard, pinned addresses, no redirects.
Email goes through ``SKUPORT_SMTP_URL`` (``smtp://`` with STARTTLS when the server offers it,
``smtps://``; user and password in the URL), as plain text and HTML.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import logging
import smtplib
import ssl
import tempfile
import threading
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import Field, model_validator
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from skuport.api import CamelModel, StrictCamelModel, Timestamp, iso_z
from skuport.config import get_settings
from skuport.db import session_scope, utcnow
from skuport.errors import SkuportError
from skuport.exporting.destinations.base import MASK
from skuport.ids import new_id
from skuport.jobs.models import ExportJob, ExportRun, RunNotification, RunStatus
from skuport.scheduling.lifecycle import rowcount

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
"""Sends of one notification before it is recorded as failed."""
BACKOFF_SECONDS = 30.0
"""Wait before the second send; doubled for each later one."""
CLAIM_SECONDS = 300
"""How long a sender owns a claimed notification (well past a send's worst case: a 15 s webhook, a 30 s
mail server); another may take it over afterwards."""
SEND_BATCH = 50
"""Notifications one scheduler pass sends at most."""


class NotificationEvent(StrEnum):
    """What a notification is sent for."""

    FAILED = "run.failed"
    """A run failed and will not be retried."""
    RECOVERED = "run.recovered"
    """The first successful run after a failed one."""
    SUCCEEDED = "run.succeeded"
    EXPORT_COMPLETED = "export.completed"
    """A one-off export's file is ready to download."""
    EXPORT_FAILED = "export.failed"
    """A one-off export failed and will not be tried again."""


JOB_EVENTS = frozenset({NotificationEvent.FAILED, NotificationEvent.RECOVERED, NotificationEvent.SUCCEEDED})
EXPORT_EVENTS = frozenset({NotificationEvent.EXPORT_COMPLETED, NotificationEvent.EXPORT_FAILED})


class Notification(StrictCamelModel):
    """Who is told what about a job's runs: a webhook (Standard Webhooks-signed JSON) or an email."""

    events: list[NotificationEvent] = Field(min_length=1, max_length=3)
    type: Literal["webhook", "email"]
    url: str | None = Field(default=None, max_length=2000, description="webhook: the receiver's URL.")
    secret: str | None = Field(
        default=None,
        max_length=500,
        description="webhook: signing secret (whsec_… or any string); write-only.",
    )
    to: list[str] | None = Field(default=None, max_length=20, description="email: the recipients.")

    @model_validator(mode="after")
    def _complete(self) -> Notification:
        if self.type == "webhook":
            if not self.url or self.to:
                raise ValueError("a webhook notification needs url (and no to)")
        elif not self.to or self.url or self.secret:
            raise ValueError("an email notification needs to (and no url or secret)")
        for address in self.to or []:
            if "@" not in address or any(c.isspace() or c in '<>,;"' for c in address) or len(address) > 254:
                raise ValueError(f"'{address}' is not an email address")
        return self


class NotificationRead(CamelModel):
    """A notification of a run, as the run history shows it."""

    event: str
    type: str
    recipient: str
    status: str = Field(description="pending, sending, sent or failed.")
    attempts: int
    error: str | None
    sent_at: Timestamp | None


# -- stored on the job ------------------------------------------------------------------------------------
def _webhook_config(item: Mapping[str, Any]) -> dict[str, Any]:
    """The webhook destination's config that sends one notification (each send is one attempt)."""
    config = {"url": item["url"], "method": "POST", "maxAttempts": 1, "timeoutSeconds": 15}
    if item.get("secret"):
        config["secret"] = item["secret"]
    return config


def check(notifications: Sequence[Notification], *, events: frozenset[str] = JOB_EVENTS) -> None:
    """The events are the caller's (a job's runs, a one-off export's), webhook URLs pass the network
    guard, email needs a mail server (a 422 naming the entry)."""
    from skuport.errors import ValidationFailed
    from skuport.exporting.destinations.base import DestinationConfigError, parse_config
    from skuport.exporting.destinations.webhook import WebhookConfig

    for i, item in enumerate(notifications):
        where = f"notifications[{i}]"
        foreign = [str(e) for e in item.events if e not in events]
        if foreign:
            allowed = ", ".join(sorted(events))
            raise ValidationFailed(
                f"{where}: event {foreign[0]} is not one of {allowed}.",
                details=[{"field": f"{where}.events", "message": f"use {allowed}"}],
            )
        if item.type == "email" and not get_settings().smtp_url:
            raise ValidationFailed(
                f"{where}: email notifications need a mail server; the operator sets SKUPORT_SMTP_URL.",
                details=[{"field": where, "message": "SKUPORT_SMTP_URL is not set"}],
            )
        if item.type == "webhook":
            try:
                parse_config(
                    WebhookConfig, _webhook_config(item.model_dump()), type_="webhook", check_network=True
                )
            except DestinationConfigError as exc:
                message = exc.message.replace("Invalid webhook destinationConfig: destinationConfig.", "")
                raise ValidationFailed(
                    f"{where}: {message}", details=[{"field": where, "message": message}]
                ) from None


def stored(notifications: Sequence[Notification] | None, previous: Sequence[Mapping[str, Any]] | None) -> Any:
    """The list as the job stores it: url and secret encrypted. A masked url or secret sent back keeps the
    stored one of the entry shown with that very url (its place in the list does not matter)."""
    from skuport.errors import ValidationFailed
    from skuport.secrets import encrypt_value

    if notifications is None:
        return None
    by_shown: dict[str, Mapping[str, Any]] = {}
    for item in previous or []:
        if item.get("url"):
            by_shown.setdefault(_shown_url(item["url"]), item)
    out: list[dict[str, Any]] = []
    for i, notification in enumerate(notifications):
        data = notification.model_dump(mode="json", exclude_none=True)
        before = by_shown.get(data.get("url") or "", {})
        for name in ("url", "secret"):
            value = data.get(name)
            if value is None:
                continue
            if MASK not in value:
                data[name] = encrypt_value(value)
            elif before.get(name):
                data[name] = before[name]  # already encrypted
            else:
                raise ValidationFailed(
                    f"notifications[{i}].{name} is masked, but no stored notification has that url; send it "
                    "in full.",
                    details=[{"field": f"notifications[{i}]", "message": f"{name} is masked"}],
                )
        out.append(data)
    return out


def _shown_url(encrypted: str) -> str:
    from skuport.secrets import decrypt_value, mask_url

    try:
        return mask_url(decrypt_value(encrypted))
    except Exception:  # a key that is gone: nothing can match it
        return ""


def shown(stored_list: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]] | None:
    """The stored list as the API shows it: the url with credentials masked, the secret as the mask."""
    if stored_list is None:
        return None
    out = []
    for item in stored_list:
        data = dict(item)
        if data.get("url"):
            data["url"] = _shown_url(data["url"]) or MASK
        if data.get("secret"):
            data["secret"] = MASK
        out.append(data)
    return out


def _plain(item: Mapping[str, Any]) -> dict[str, Any]:
    from skuport.secrets import decrypt_value

    data = dict(item)
    for name in ("url", "secret"):
        if data.get(name):
            data[name] = decrypt_value(data[name])
    return data


# -- the outbox -------------------------------------------------------------------------------------------
def enqueue(session: Session, run_id: str, *, now: dt.datetime) -> int:
    """In the transaction that ended ``run_id``: add its notifications (none twice); how many were added.

    Never raises: a notification must not undo the run's recorded end (its own savepoint; logged)."""
    try:
        with session.begin_nested():
            return _enqueue(session, run_id, now=now)
    except Exception:
        log.exception("run %s: its notifications could not be recorded", run_id)
        return 0


def _enqueue(session: Session, run_id: str, *, now: dt.datetime) -> int:
    run = session.get(ExportRun, run_id)
    job = session.get(ExportJob, run.job_id) if run is not None else None
    if run is None or job is None or not job.notifications:
        return 0
    events = _events(session, run)
    key = run.retry_of or run.id
    return _add(session, job.notifications, events, key=key, now=now, run_id=run.id, job_id=job.id)


def enqueue_export(session: Session, export_id: str, *, now: dt.datetime) -> int:
    """In the transaction that ended a one-off export: its notifications (export.completed or
    export.failed, once each); how many were added. Never raises (as :func:`enqueue`)."""
    from skuport.exports.models import Export, ExportStatus

    try:
        with session.begin_nested():
            export = session.get(Export, export_id)
            if export is None or not export.notifications:
                return 0
            event = {
                ExportStatus.COMPLETED: NotificationEvent.EXPORT_COMPLETED,
                ExportStatus.FAILED: NotificationEvent.EXPORT_FAILED,
            }.get(ExportStatus(export.status))
            if event is None:
                return 0
            return _add(session, export.notifications, [event], key=export.id, now=now, export_id=export.id)
    except Exception:
        log.exception("export %s: its notifications could not be recorded", export_id)
        return 0


def _add(
    session: Session,
    targets: Sequence[Mapping[str, Any]],
    events: Sequence[NotificationEvent],
    *,
    key: str,
    now: dt.datetime,
    run_id: str | None = None,
    job_id: str | None = None,
    export_id: str | None = None,
) -> int:
    """Outbox rows for ``events`` of the work ``key``, one per (event, notification), none twice."""
    taken = set(
        session.execute(
            select(RunNotification.event, RunNotification.target).where(RunNotification.run_key == key)
        ).all()
    )
    added = 0
    for target, item in enumerate(targets):
        for event in (e for e in events if e in item.get("events", [])):
            if (event, target) in taken:
                continue
            recipient = (
                _shown_url(item["url"]) if item["type"] == "webhook" else ", ".join(item.get("to", []))
            )
            try:
                with session.begin_nested():  # a concurrent ender of the same work: its row stands
                    session.add(
                        RunNotification(
                            id=new_id("ntf"),
                            run_id=run_id,
                            job_id=job_id,
                            export_id=export_id,
                            run_key=key,
                            event=event,
                            target=target,
                            type=item["type"],
                            recipient=recipient or MASK,
                            spec=dict(item),
                            status="pending",
                            attempts=0,
                            next_attempt_at=now,
                            created_at=now,
                        )
                    )
                    session.flush()
            except IntegrityError:
                continue
            added += 1
    return added


def _events(session: Session, run: ExportRun) -> list[NotificationEvent]:
    """What the end of ``run`` is: run.failed, or run.succeeded (and run.recovered after a failure)."""
    if run.status == RunStatus.FAILED:
        return [NotificationEvent.FAILED] if run.retry_at is None else []
    if run.status != RunStatus.SUCCESS:
        return []
    chain = run.retry_of or run.id
    later = aliased(ExportRun)
    previous = session.scalar(
        select(ExportRun.status)
        .where(
            ExportRun.job_id == run.job_id,
            ExportRun.id != chain,
            or_(ExportRun.retry_of.is_(None), ExportRun.retry_of != chain),
            ExportRun.completed_at.is_not(None),
            # a chain's last word: a success, or a failure that is not retried (no later attempt)
            or_(
                ExportRun.status == RunStatus.SUCCESS,
                and_(
                    ExportRun.status == RunStatus.FAILED,
                    ExportRun.retry_at.is_(None),
                    ~select(later.id)
                    .where(
                        later.job_id == ExportRun.job_id,
                        later.scheduled_for == ExportRun.scheduled_for,
                        later.attempt > ExportRun.attempt,
                    )
                    .exists(),
                ),
            ),
        )
        .order_by(ExportRun.completed_at.desc())
        .limit(1)
    )
    events = [NotificationEvent.SUCCEEDED]
    if previous == RunStatus.FAILED:
        events.append(NotificationEvent.RECOVERED)
    return events


def send_due(*, limit: int = SEND_BATCH, stop: threading.Event | None = None) -> int:
    """Send the notifications that are due, each claimed first (two senders never both send one); how many
    were sent. A row a lost sender left after its last attempt is recorded as failed."""
    now = utcnow()
    with session_scope() as session:
        session.execute(
            update(RunNotification)
            .where(
                RunNotification.status == "sending",
                RunNotification.next_attempt_at <= now,
                RunNotification.attempts >= MAX_ATTEMPTS,
            )
            .values(
                status="failed",
                error=func.coalesce(RunNotification.error, "") + " (its sender was lost on the last attempt)",
            )
            .execution_options(synchronize_session=False)
        )
    with session_scope(write=False) as session:
        due = list(
            session.scalars(
                select(RunNotification.id)
                .where(
                    RunNotification.status.in_(["pending", "sending"]),
                    RunNotification.next_attempt_at <= now,
                    RunNotification.attempts < MAX_ATTEMPTS,
                )
                .order_by(RunNotification.next_attempt_at)
                .limit(limit)
            )
        )
    sent = 0
    for ident in due:
        if stop is not None and stop.is_set():
            break
        attempt = _claim(ident)
        if attempt is not None:
            sent += _send(ident, attempt)
    return sent


def _claim(ident: str) -> int | None:
    """Own the notification for one send (until :data:`CLAIM_SECONDS` from now); the attempt, or None."""
    now = utcnow()
    with session_scope() as session:
        attempts = session.scalar(select(RunNotification.attempts).where(RunNotification.id == ident))
        if attempts is None:
            return None
        claimed = rowcount(
            session.execute(
                update(RunNotification)
                .where(
                    RunNotification.id == ident,
                    RunNotification.attempts == attempts,
                    RunNotification.attempts < MAX_ATTEMPTS,
                    RunNotification.status.in_(["pending", "sending"]),
                    RunNotification.next_attempt_at <= now,
                )
                .values(
                    status="sending",
                    attempts=attempts + 1,
                    next_attempt_at=now + dt.timedelta(seconds=CLAIM_SECONDS),
                )
                .execution_options(synchronize_session=False)
            )
        )
        return attempts + 1 if claimed else None


def _send(ident: str, attempt: int) -> int:
    """One send of a claimed notification, its outcome recorded if the claim is still ours."""
    from skuport.secrets import redact, url_credentials

    item: dict[str, Any] = {}
    event = ""
    try:
        with session_scope(write=False) as session:
            note = session.get(RunNotification, ident)
            payload = _payload_of(session, note) if note is not None else None
            if note is None or payload is None:
                return 0
            event = note.event
            item = _plain(note.spec)
        if item["type"] == "webhook":
            _webhook(item, payload, msg_id=ident)
        else:
            _email(item, event, payload)
        error = None
    except Exception as exc:  # recorded on the run, never fails it
        secrets = [item.get("secret"), *url_credentials(item.get("url") or "")]
        error = redact(getattr(exc, "message", None) or str(exc) or type(exc).__name__, secrets)
        log.warning("notification %s (%s) failed: %s", ident, event, error)
    now = utcnow()
    values: dict[str, Any]
    if error is None:
        values = {"status": "sent", "sent_at": now, "error": None}
        log.info("notification %s: %s sent (%s)", ident, event, item.get("type"))
    elif attempt >= MAX_ATTEMPTS:
        values = {"status": "failed", "error": error}
    else:
        wait = BACKOFF_SECONDS * 2 ** (attempt - 1)
        values = {"status": "pending", "error": error, "next_attempt_at": now + dt.timedelta(seconds=wait)}
    with session_scope() as session:
        session.execute(
            update(RunNotification)
            .where(
                RunNotification.id == ident,
                RunNotification.status == "sending",
                RunNotification.attempts == attempt,  # still our claim
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    return 1 if error is None else 0


def _payload_of(session: Session, note: RunNotification) -> dict[str, Any] | None:
    """The event of an outbox row (None when its run, job or export is gone)."""
    from skuport.exports.models import Export

    if note.export_id is not None:
        export = session.get(Export, note.export_id)
        return _export_payload(note.event, export) if export is not None else None
    job = session.get(ExportJob, note.job_id)
    run = session.get(ExportRun, note.run_id)
    return _payload(note.event, job, run) if job is not None and run is not None else None


def _export_payload(event: str, export: Any) -> dict[str, Any]:
    """A one-off export's event: type, timestamp and data (export, status, file, error)."""
    errors = export.errors_log or {}
    return {
        "type": event,
        "timestamp": iso_z(utcnow()),
        "data": {
            "exportId": export.id,
            "status": export.status,
            "format": export.format,
            "reference": export.reference,
            "recordCount": export.record_count,
            "fileSize": export.file_size,
            "sha256": export.sha256,
            "downloadPath": f"/api/v1/exports/{export.id}/download"
            if event == NotificationEvent.EXPORT_COMPLETED
            else None,
            "error": "; ".join(str(v) for v in errors.values()) or None,
        },
    }


def _payload(event: str, job: ExportJob, run: ExportRun) -> dict[str, Any]:
    """The event's JSON: type, timestamp and data (job, run, error, destinationPath)."""
    return {
        "type": event,
        "timestamp": iso_z(utcnow()),
        "data": {
            "jobId": job.id,
            "jobName": job.name,
            "runId": run.id,
            "status": run.status,
            "attempt": run.attempt,
            "trigger": run.trigger,
            "scheduledFor": iso_z(run.scheduled_for),
            "completedAt": iso_z(run.completed_at) if run.completed_at else None,
            "recordCount": run.record_count,
            "destinationPath": run.destination_path,
            "error": run.error,
        },
    }


def _webhook(item: Mapping[str, Any], payload: Mapping[str, Any], *, msg_id: str) -> None:
    from skuport.exporting.destinations import get_destination
    from skuport.exporting.destinations.base import Delivery

    with tempfile.TemporaryDirectory(prefix="skuport-notify-") as folder:
        path = Path(folder) / "event.json"
        path.write_bytes(json.dumps(payload).encode())
        destination = get_destination("webhook", _webhook_config(item))
        destination.deliver(
            Delivery(path=path, filename="event.json", content_type="application/json", delivery_id=msg_id)
        )


class MailError(SkuportError):
    """The mail server refused or could not be reached."""

    code = "mail_failed"


def _email(item: Mapping[str, Any], event: str, payload: Mapping[str, Any]) -> None:
    url = get_settings().smtp_url
    if not url:
        raise MailError("SKUPORT_SMTP_URL is not set; the operator configures the mail server.")
    parts = urlsplit(url)
    sender = parse_qs(parts.query).get("from", [f"skuport@{parts.hostname or 'localhost'}"])[0]
    message = _message(event, payload, sender=sender, to=list(item.get("to", [])))
    host, port = parts.hostname or "localhost", parts.port
    try:
        if parts.scheme == "smtps":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                host, port or 465, timeout=30, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(host, port or 587, timeout=30)
        with client:
            client.ehlo()
            if parts.scheme == "smtp" and client.has_extn("starttls"):
                client.starttls(context=ssl.create_default_context())
                client.ehlo()
            if parts.username:
                client.login(unquote(parts.username), unquote(parts.password or ""))
            client.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise MailError(f"mail server {host}:{port or ''} refused or unreachable: {exc}") from None


_ADVICE = {
    NotificationEvent.FAILED: "Open the run in the console for the full error, fix the cause (the "
    "destination's credentials, path or network), then start the job with 'Run now'.",
    NotificationEvent.RECOVERED: "The feed is delivered again; nothing to do.",
    NotificationEvent.SUCCEEDED: "Nothing to do.",
}


def _export_lines(event: str, data: Mapping[str, Any]) -> tuple[str, list[str]]:
    """A one-off export's email: its subject and lines."""
    what = "is ready" if event == NotificationEvent.EXPORT_COMPLETED else "failed"
    name = f"{data['exportId']}" + (f" ({data['reference']})" if data.get("reference") else "")
    lines = [f"One-off export {name} {what}.", ""]
    if data["error"]:
        lines += [f"Error: {data['error']}", "", "Fix the cause, then create the export again."]
    else:
        lines += [
            f"{data['recordCount']} records, {data['fileSize']} bytes ({data['format']}).",
            f"Download: {data['downloadPath']} (with your token), before the file expires.",
        ]
    return f"[skuport] export {data['exportId']} {what}", lines


def _message(event: str, payload: Mapping[str, Any], *, sender: str, to: list[str]) -> EmailMessage:
    data = payload["data"]
    if event in EXPORT_EVENTS:
        subject, lines = _export_lines(event, data)
    else:
        subject, lines = _run_lines(event, data)
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = ", ".join(to)
    message.set_content("\n".join(lines))
    body = "".join(f"<p>{html.escape(line)}</p>" if line else "" for line in lines)
    message.add_alternative(f"<html><body>{body}</body></html>", subtype="html")
    return message


def _run_lines(event: str, data: Mapping[str, Any]) -> tuple[str, list[str]]:
    """A run's email: its subject and lines."""
    what = {"run.failed": "failed", "run.recovered": "recovered", "run.succeeded": "succeeded"}[event]
    lines = [
        f"Export job '{data['jobName']}' ({data['jobId']}): run {data['runId']} {what}.",
        "",
        f"Scheduled for: {data['scheduledFor']} (attempt {data['attempt']}, {data['trigger']})",
    ]
    if data["error"]:
        lines.append(f"Error: {data['error']}")
    if data["destinationPath"]:
        lines.append(f"Delivered to: {data['destinationPath']} ({data['recordCount']} records)")
    lines += ["", _ADVICE[NotificationEvent(event)]]
    return f"[skuport] {data['jobName']}: run {what}", lines
