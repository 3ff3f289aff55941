"""The network guard, attacked through the API of a live server: no configured destination may point
at an internal address, and a refused one is never connected to (a listener counts connections)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.live import LiveServer, live_server

HOSTS = ["127.0.0.1", "10.0.0.1", "169.254.169.254", "[::1]", "0x7f000001", "2130706433", "localhost"]
FINGERPRINT = "SHA256:" + "a" * 43


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    """A live server with the default policy (nothing internal allowed)."""
    with live_server(None) as live:
        yield live


@pytest.fixture(scope="module")
def listener() -> Iterator[dict[str, Any]]:
    """A TCP listener on loopback that counts the connections it accepts."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.settimeout(0.2)
    state: dict[str, Any] = {"port": sock.getsockname()[1], "accepted": 0}
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            state["accepted"] += 1
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield state
    stop.set()
    thread.join(2)
    sock.close()


def configs(host: str, port: int) -> dict[str, tuple[dict[str, Any], str]]:
    """A destination config of every kind pointing at ``host``, and the field the refusal names."""
    url = f"http://{host}:{port}"
    return {
        "webhook": ({"url": f"{url}/hook"}, "destinationConfig.url"),
        "s3": (
            {"bucket": "feeds", "endpointUrl": url, "accessKeyId": "a", "secretAccessKey": "b"},
            "destinationConfig.endpointUrl",
        ),
        "azure-blob": (
            {"container": "feeds", "accountUrl": f"{url}/acct", "sasToken": "sv=1&sig=x"},
            "destinationConfig.accountUrl",
        ),
        "sftp": (
            {
                "host": host.strip("[]"),
                "port": port,
                "username": "u",
                "password": "p" * 8,
                "hostKeyFingerprint": FINGERPRINT,
            },
            "destinationConfig.host",
        ),
    }


def job(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "attack",
        "destinationType": kind,
        "destinationConfig": config,
        "format": "csv",
        "schedule": "0 2 * * *",
    }


@pytest.mark.parametrize("host", HOSTS)
def test_every_destination_kind_pointed_inside_is_refused_at_create(
    server: LiveServer, listener: dict[str, Any], host: str
) -> None:
    before = listener["accepted"]
    for kind, (config, field) in configs(host, listener["port"]).items():
        response = httpx.post(
            f"{server.url}/api/v1/export-jobs", headers=server.headers, json=job(kind, config), timeout=10
        )
        assert response.status_code == 422, (kind, host, response.text)
        error = response.json()["error"]
        assert field in {d["field"] for d in error["details"]}, (kind, error)
        assert "refused by the network policy" in error["message"]
    connection_string = (
        "DefaultEndpointsProtocol=http;AccountName=a;AccountKey=a2V5;"
        f"BlobEndpoint=http://{host}:{listener['port']}/a;"
    )
    response = httpx.post(
        f"{server.url}/api/v1/export-jobs",
        headers=server.headers,
        timeout=10,
        json=job("azure-blob", {"container": "c", "connectionString": connection_string}),
    )
    assert response.status_code == 422, response.text
    assert listener["accepted"] == before, "a refused destination was connected to"


def test_a_put_cannot_move_a_destination_inside(server: LiveServer, listener: dict[str, Any]) -> None:
    created = httpx.post(
        f"{server.url}/api/v1/export-jobs",
        headers=server.headers,
        timeout=10,
        json=job("local", {"path": "feeds"}),
    )
    assert created.status_code == 201, created.text
    config, _field = configs("169.254.169.254", 80)["webhook"]
    response = httpx.put(
        f"{server.url}/api/v1/export-jobs/{created.json()['id']}",
        headers=server.headers,
        json=job("webhook", config),
        timeout=10,
    )
    assert response.status_code == 422 and "refused by the network policy" in response.text
    kept = httpx.get(
        f"{server.url}/api/v1/export-jobs/{created.json()['id']}", headers=server.headers, timeout=10
    ).json()
    assert kept["destinationType"] == "local"


def test_public_names_that_do_not_resolve_yet_are_accepted(server: LiveServer) -> None:
    # The seeds' own examples (AWS, Azure account URLs, public hosts) must keep working.
    for kind, config in [
        ("s3", {"bucket": "sigma-exports", "path": "feeds/", "region": "eu-west-1"}),
        (
            "azure-blob",
            {
                "container": "feeds",
                "accountUrl": "https://acct.blob.core.windows.net",
                "sasToken": "sv=2024&sig=abc",
            },
        ),
        ("webhook", {"url": "https://hooks.example.com/in"}),
    ]:
        response = httpx.post(
            f"{server.url}/api/v1/export-jobs", headers=server.headers, timeout=10, json=job(kind, config)
        )
        assert response.status_code == 201, (kind, response.text)
