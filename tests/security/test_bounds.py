"""Attacks on input bounds, against a live `skuport serve`: every one refused with the error envelope."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.live import LiveServer, live_server

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    """One live server (SQLite, demo world) for this module."""
    with live_server(None) as live:
        yield live


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _server_pid(server: LiveServer) -> int:
    port = server.url.rsplit(":", 1)[1]
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"serve" in cmdline and port.encode() in cmdline:
                return int(proc.name)
    raise AssertionError("server process not found")


def test_a_50_mb_chunked_body_is_refused_with_413_in_flat_memory(server: LiveServer) -> None:
    pid = _server_pid(server)
    before = _rss_kib(pid)

    def body() -> Iterator[bytes]:  # a generator: httpx sends it chunked, with no Content-Length
        chunk = b"[" + b"1," * (MiB // 2 - 1) + b"1]"
        for _ in range(50):
            yield chunk

    response = httpx.post(
        f"{server.url}/api/v1/records",
        content=body(),
        timeout=60,
        headers={**server.headers, "Content-Type": "application/json"},
    )
    growth_mib = (_rss_kib(pid) - before) / 1024
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "payload_too_large"
    assert growth_mib < 20, f"server RSS grew {growth_mib:.1f} MiB"


def test_a_declared_oversized_body_is_refused_before_reading(server: LiveServer) -> None:
    response = httpx.post(
        f"{server.url}/api/v1/records",
        content=b"x" * (11 * MiB),
        timeout=60,
        headers={**server.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"


def _raw(server: LiveServer, request: bytes) -> tuple[bytes, dict[str, str], bytes]:
    """Send bytes as they are (no client would send them) and read the whole answer.

    The server answers a request it cannot read and closes; nothing is sent after what it has read, so
    the close is not a reset that would drop its answer.
    """
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(server.url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    return status.encode(), {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}, body


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /api/v1/records\xff HTTP/1.1\r\nHost: x\r\n\r\n",  # a byte no request line may hold
        # headers over h11's 16 KiB, still unfinished: the server refuses them before the end
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40_000,
        b"NOT-HTTP\r\n\r\n",
    ],
)
def test_requests_uvicorn_cannot_read_get_the_envelope(server: LiveServer, request_bytes: bytes) -> None:
    status, headers, body = _raw(server, request_bytes)
    assert status.startswith(b"HTTP/1.1 400")
    assert headers["content-type"] == "application/json"
    error = json.loads(body)["error"]
    assert error["code"] == "malformed_request" and error["message"].startswith("The HTTP request could not")


@pytest.mark.parametrize("zone", ["Europe", "America", "x" * 300, "localtime", "posix/Europe/Paris"])
def test_a_time_zone_that_is_not_an_iana_name_is_a_422(server: LiveServer, zone: str) -> None:
    response = httpx.post(
        f"{server.url}/api/v1/export-jobs",
        headers=server.headers,
        timeout=10,
        json={
            "name": "tz",
            "destinationType": "local",
            "destinationConfig": {"path": "tz"},
            "format": "csv",
            "schedule": "0 2 * * *",
            "timezone": zone,
        },
    )
    assert response.status_code == 422, response.text
    assert "timezone" in {d.get("field") for d in response.json()["error"]["details"]}


def test_signed_download_urls_are_logged_without_their_signature() -> None:
    with live_server(None, {"SKUPORT_LOG_LEVEL": "info"}) as server:  # access lines are logged at info
        _download_and_read_the_log(server)


def _download_and_read_the_log(server: LiveServer) -> None:
    import time
    from urllib.parse import parse_qs, urlsplit

    created = httpx.post(
        f"{server.url}/api/v1/exports",
        headers=server.headers,
        timeout=10,
        json={"format": "csv", "schemaId": "schema-apparel"},
    ).json()
    deadline = time.monotonic() + 30
    while (
        body := httpx.get(
            f"{server.url}/api/v1/exports/{created['id']}", headers=server.headers, timeout=10
        ).json()
    )["status"] != "completed":
        assert time.monotonic() < deadline, body
        time.sleep(0.1)
    assert httpx.get(body["downloadUrl"], timeout=10).status_code == 200
    signature = parse_qs(urlsplit(body["downloadUrl"]).query)["signature"][0]
    log = (Path(server.env["SKUPORT_DATA_DIR"]) / "server.log").read_text()
    assert f"/api/v1/exports/{created['id']}/download" in log  # the access line is there
    assert signature not in log and "signature=********" in log
