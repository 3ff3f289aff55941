"""Webhook destination against a real HTTP receiver that verifies Standard Webhooks signatures."""

from __future__ import annotations

import base64
import gzip
import json
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
from standardwebhooks import Webhook

from skuport.exporting.destinations import get_destination, validate_config
from skuport.exporting.destinations import webhook as webhook_module
from skuport.exporting.destinations.base import Delivery, DeliveryError, DestinationConfigError
from skuport.exporting.destinations.network import NetworkRefused
from skuport.exporting.destinations.webhook import WebhookDestination
from skuport.secrets import decrypt_config, encrypt_config, install_log_redaction
from tests.exporting.destinations.servers import Receiver, random_bytes, standard_webhooks_signature

Make = Callable[..., Delivery]
SECRET = "whsec_" + base64.b64encode(b"skuport-webhook-test-secret-0123").decode()
JSON_BODY = json.dumps([{"sku": "A-1", "name": "Shirt"}]).encode()


def _fast(dest: WebhookDestination) -> WebhookDestination:
    """Millisecond backoff so retry tests stay quick (the formula is unchanged)."""
    dest.backoff_base = 0.02
    return dest


def _verify(received: Any, secret: str | bytes = SECRET) -> None:
    """The receiver's check: the standardwebhooks package verifies id, timestamp and signature."""
    headers = {k.lower(): v for k, v in received.headers.items()}
    Webhook(secret).verify(
        received.body,
        {name: headers[name] for name in ("webhook-id", "webhook-timestamp", "webhook-signature")},
    )


@pytest.mark.usefixtures("allow_private")
def test_posts_the_file_signed_per_standard_webhooks(receiver: Receiver, make_file: Make) -> None:
    config = {
        "url": receiver.url("/hooks/products?source=skuport"),
        "secret": SECRET,
        "headers": {"X-Feed": "products"},
    }
    delivery = make_file(
        JSON_BODY, "products.json", content_type="application/json", delivery_id="run-20260308-020000"
    )

    path = get_destination("webhook", config).deliver(delivery)

    assert path == receiver.url("/hooks/products")
    (got,) = receiver.requests
    assert (got.method, got.path, got.body) == ("POST", "/hooks/products?source=skuport", JSON_BODY)
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["X-Feed"] == "products"
    assert got.headers["webhook-id"] == "run-20260308-020000"
    assert abs(int(got.headers["webhook-timestamp"]) - time.time()) < 60
    _verify(got)


@pytest.mark.usefixtures("allow_private")
def test_put_with_a_raw_secret(receiver: Receiver, make_file: Make) -> None:
    raw = "plain-shared-secret-42"
    dest = WebhookDestination({"url": receiver.url(), "method": "put", "secret": raw})
    dest.deliver(make_file(JSON_BODY, content_type="application/json"))
    (got,) = receiver.requests
    assert got.method == "PUT"
    _verify(got, raw.encode())


@pytest.mark.usefixtures("allow_private")
def test_gzip_file_is_sent_as_gzip_without_content_encoding(receiver: Receiver, make_file: Make) -> None:
    body = gzip.compress(b"sku,name\n" + b"A-1,Shirt\n" * 1000)
    WebhookDestination({"url": receiver.url(), "secret": SECRET}).deliver(
        make_file(body, "products.csv.gz", content_type="application/gzip", delivery_id="run-gz")
    )
    (got,) = receiver.requests
    assert got.body == body
    assert "Content-Encoding" not in got.headers
    assert got.headers["Content-Type"] == "application/gzip"
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    expected = standard_webhooks_signature(key, "run-gz", got.headers["webhook-timestamp"], body)
    assert got.headers["webhook-signature"] == expected


@pytest.mark.usefixtures("allow_private")
def test_no_secret_means_no_signature_headers(receiver: Receiver, make_file: Make) -> None:
    WebhookDestination({"url": receiver.url()}).deliver(make_file(b"a,b\n"))
    (got,) = receiver.requests
    assert not {"webhook-id", "webhook-signature"} & {k.lower() for k in got.headers}


@pytest.mark.usefixtures("allow_private")
def test_server_errors_are_retried_with_backoff_then_succeed(receiver: Receiver, make_file: Make) -> None:
    receiver.script = [("respond", 500, {}, b"boom"), ("respond", 502, {}, b""), ("respond", 204, {}, b"")]
    dest = _fast(WebhookDestination({"url": receiver.url(), "secret": SECRET, "maxAttempts": 3}))

    dest.deliver(make_file(JSON_BODY, content_type="application/json"))

    assert len(receiver.requests) == 3
    assert {r.headers["webhook-id"] for r in receiver.requests} == {"run-20260308-020000"}
    for got in receiver.requests:
        _verify(got)
    gaps = [b.at - a.at for a, b in zip(receiver.requests, receiver.requests[1:], strict=False)]
    assert gaps[0] >= 0.01 and gaps[1] >= 0.02, f"exponential backoff between attempts: {gaps}"


@pytest.mark.usefixtures("allow_private")
def test_too_many_requests_honours_retry_after(receiver: Receiver, make_file: Make) -> None:
    receiver.script = [("respond", 429, {"Retry-After": "1"}, b"slow down")]
    dest = _fast(WebhookDestination({"url": receiver.url(), "maxAttempts": 2}))

    dest.deliver(make_file(b"a,b\n"))

    first, second = receiver.requests
    assert second.at - first.at >= 0.95


@pytest.mark.usefixtures("allow_private")
def test_a_long_retry_after_fails_instead_of_waiting(receiver: Receiver, make_file: Make) -> None:
    receiver.script = [("respond", 429, {"Retry-After": "3600"}, b"")]
    with pytest.raises(DeliveryError, match="asked to retry after 3600 s"):
        _fast(WebhookDestination({"url": receiver.url()})).deliver(make_file(b"a"))
    assert len(receiver.requests) == 1


@pytest.mark.usefixtures("allow_private")
def test_client_errors_are_not_retried(receiver: Receiver, make_file: Make) -> None:
    receiver.script = [("respond", 400, {}, b"bad payload: missing column sku")]
    with pytest.raises(DeliveryError) as info:
        _fast(WebhookDestination({"url": receiver.url("/hook?token=abc"), "maxAttempts": 5})).deliver(
            make_file(b"a")
        )
    assert len(receiver.requests) == 1
    assert info.value.message == (
        f"Webhook POST to {receiver.url('/hook')} was refused: 400 Bad Request (receiver said: "
        "'bad payload: missing column sku'). Not retried; check the url, method, headers and signing secret "
        "the receiver expects."
    )


@pytest.mark.usefixtures("allow_private")
def test_redirects_are_not_followed(receiver: Receiver, make_file: Make) -> None:
    receiver.script = [("respond", 302, {"Location": "http://169.254.169.254/latest/meta-data/"}, b"")]
    with pytest.raises(DeliveryError, match=r"was redirected: 302 Found"):
        WebhookDestination({"url": receiver.url()}).deliver(make_file(b"a"))
    assert len(receiver.requests) == 1


@pytest.mark.usefixtures("allow_private")
def test_connection_cut_mid_body_is_retried(receiver: Receiver, make_file: Make) -> None:
    body = random_bytes(3 * 1024 * 1024)
    receiver.script = [("drop", 64 * 1024)]
    dest = _fast(WebhookDestination({"url": receiver.url(), "secret": SECRET, "maxAttempts": 3}))

    dest.deliver(make_file(body, "big.bin", content_type="application/octet-stream", delivery_id="run-cut"))

    cut, whole = receiver.requests
    assert len(cut.body) < len(body)
    assert whole.body == body
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    assert whole.headers["webhook-signature"] == standard_webhooks_signature(
        key, "run-cut", whole.headers["webhook-timestamp"], body
    )


@pytest.mark.usefixtures("allow_private")
def test_unreachable_receiver_fails_after_all_attempts(closed_port: int, make_file: Make) -> None:
    url = f"http://127.0.0.1:{closed_port}/hook"
    with pytest.raises(DeliveryError) as info:
        _fast(WebhookDestination({"url": url, "maxAttempts": 2})).deliver(make_file(b"a"))
    assert info.value.message.startswith(
        f"Webhook POST to {url} failed after 2 attempts: connection failed (ConnectError"
    )
    assert info.value.message.endswith(
        "Check that the receiver is up and accepts the file; the run can be retried."
    )


@pytest.mark.usefixtures("allow_private")
def test_slow_receiver_times_out(receiver: Receiver, make_file: Make) -> None:
    receiver.script = [("sleep", 3, 200)]
    started = time.monotonic()
    with pytest.raises(DeliveryError, match=r"failed after 1 attempt: no answer within 0.3 s \(timeout\)"):
        WebhookDestination({"url": receiver.url(), "timeoutSeconds": 0.3, "maxAttempts": 1}).deliver(
            make_file(b"a")
        )
    # Gave up on its own 0.3 s timeout, well before the receiver would have answered (3 s).
    assert time.monotonic() - started < 2.5


def test_loopback_receiver_is_refused_by_default(
    receiver: Receiver, make_file: Make, settings_env: Callable[..., None]
) -> None:
    destination = WebhookDestination({"url": receiver.url()})  # made while the operator allowed it
    settings_env(allow_private_networks="false", webhook_allow_private="false", webhook_allow_list="")
    with pytest.raises(DestinationConfigError, match="refused by the network policy"):
        validate_config("webhook", {"url": receiver.url()})  # create and PUT
    # checked again right before connecting (a DNS answer can change between create and run)
    with pytest.raises(NetworkRefused) as info:
        destination.deliver(make_file(b"a"))
    assert info.value.message.startswith("Webhook: 127.0.0.1 is refused by the network policy")
    assert receiver.requests == [], "nothing was sent"


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:9/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.8/hook",
        "http://[::1]:9/hook",
        "http://[::ffff:127.0.0.1]:9/",
        "http://192.168.1.20/",
        "http://100.100.100.200/",
        "http://0.0.0.0:9/",
        "http://0x7f000001:9/",
        "http://2130706433:9/",
        "http://0177.0.0.1:9/",
    ],
)
def test_internal_addresses_are_refused_on_the_resolved_address(
    url: str, make_file: Make, settings_env: Callable[..., None]
) -> None:
    settings_env(allow_private_networks="false", webhook_allow_private="false", webhook_allow_list="")
    with pytest.raises(DestinationConfigError, match="refused by the network policy"):
        validate_config("webhook", {"url": url, "maxAttempts": 1})  # create and PUT
    with pytest.raises(NetworkRefused):  # and a delivery, right before connecting
        WebhookDestination({"url": url, "maxAttempts": 1}).deliver(make_file(b"a"))


def test_allow_list_admits_a_network_or_a_host(
    receiver: Receiver, make_file: Make, settings_env: Callable[..., None]
) -> None:
    settings_env(
        allow_private_networks="false",
        webhook_allow_private="false",
        webhook_allow_list="hooks.internal, 127.0.0.0/8",
    )
    WebhookDestination({"url": receiver.url()}).deliver(make_file(b"by network"))
    settings_env(webhook_allow_list="localhost")
    WebhookDestination({"url": f"http://localhost:{receiver.port}/hook"}).deliver(make_file(b"by host"))
    assert [r.body for r in receiver.requests] == [b"by network", b"by host"]
    settings_env(webhook_allow_list="10.0.0.0/8")
    with pytest.raises(NetworkRefused, match="refused by the network policy"):
        WebhookDestination({"url": receiver.url()}).deliver(make_file(b"a"))


def test_connection_goes_to_the_checked_address(
    receiver: Receiver, make_file: Make, settings_env: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name is resolved once, checked, and the connection is pinned to that address."""
    settings_env(
        allow_private_networks="false", webhook_allow_private="false", webhook_allow_list="127.0.0.1/32"
    )
    lookups: list[str] = []
    real = socket.getaddrinfo

    def resolver(host: str, *args: Any, **kwargs: Any) -> Any:
        if host == "127.0.0.1":  # an address literal: no DNS involved
            return real(host, *args, **kwargs)
        lookups.append(host)
        if host == "feeds.rebind.test" and len(lookups) == 1:
            return real("127.0.0.1", *args, **kwargs)
        raise socket.gaierror(socket.EAI_NONAME, "a second lookup would have been answered by an attacker")

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    WebhookDestination({"url": f"http://feeds.rebind.test:{receiver.port}/hook"}).deliver(
        make_file(b"pinned")
    )

    assert lookups == ["feeds.rebind.test"], "resolved exactly once, by the check; the connection reused it"
    (got,) = receiver.requests
    assert got.headers["Host"] == f"feeds.rebind.test:{receiver.port}"


@pytest.mark.usefixtures("allow_private")
def test_secrets_stay_out_of_errors_and_logs(
    receiver: Receiver, caplog: pytest.LogCaptureFixture, make_file: Make
) -> None:
    token = "Bearer sk-live-verysecrettoken-123456"
    receiver.script = [("respond", 401, {}, f"invalid Authorization: {token}".encode())] + [
        ("respond", 500, {}, f"echo {SECRET}".encode())
    ] * 2
    install_log_redaction(caplog.handler)
    plain = {"url": receiver.url(), "secret": SECRET, "headers": {"Authorization": token}, "maxAttempts": 2}
    config = decrypt_config("webhook", encrypt_config("webhook", plain))
    with caplog.at_level(logging.DEBUG), pytest.raises(DeliveryError) as refused:
        _fast(WebhookDestination(config)).deliver(make_file(b"a"))
    with caplog.at_level(logging.DEBUG), pytest.raises(DeliveryError) as failed:
        _fast(WebhookDestination(config)).deliver(make_file(b"a"))
    assert receiver.requests[0].headers["Authorization"] == token, "the header was sent"
    assert "401 Unauthorized" in refused.value.message and "500" in failed.value.message
    for secret in (token, SECRET, SECRET.removeprefix("whsec_")):
        assert secret not in refused.value.message and secret not in failed.value.message
        assert secret not in caplog.text
    assert "httpcore" in caplog.text or "webhook" in caplog.text


def test_config_validation() -> None:
    assert validate_config("webhook", {"url": "https://hooks.example.com/x"}) == {
        "url": "https://hooks.example.com/x",
        "method": "POST",
        "headers": {},
        "timeoutSeconds": 30,
        "maxAttempts": 5,
    }
    for bad in (
        {"url": "ftp://x/y"},
        {"url": "https://"},
        {"url": "https://x", "method": "GET"},
        {"url": "https://x", "headers": {"Content-Type": "x"}},
        {"url": "https://x", "headers": {"X-A": "a\r\nInjected: 1"}},
        {"url": "https://x", "headers": {"bad name": "v"}},
        {"url": "https://x", "secret": "whsec_***not-base64***"},
        {"url": "https://x", "maxAttempts": 0},
        {"url": "https://x", "timeoutSeconds": 0},
    ):
        with pytest.raises(DestinationConfigError):
            validate_config("webhook", bad)


def test_retry_after_parsing() -> None:
    assert webhook_module._retry_after("7") == 7
    assert webhook_module._retry_after("garbage") is None
    soon = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 25 <= (webhook_module._retry_after(soon) or 0) <= 31


def test_connection_test_applies_the_address_policy(
    receiver: Receiver, closed_port: int, settings_env: Callable[..., None]
) -> None:
    settings_env(allow_private_networks="false", webhook_allow_private="false", webhook_allow_list="")
    with pytest.raises(DeliveryError, match="Webhook connection test failed: refused by the network policy"):
        WebhookDestination({"url": receiver.url()}).test_connection()
    settings_env(webhook_allow_private="true")
    WebhookDestination({"url": receiver.url()}).test_connection()
    with pytest.raises(DeliveryError, match="Webhook connection test failed: cannot reach"):
        WebhookDestination({"url": f"http://127.0.0.1:{closed_port}/"}).test_connection()
    assert receiver.requests == [], "a connection test sends no file"
