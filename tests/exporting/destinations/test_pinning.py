"""DNS rebinding through the SDK destinations: boto3 and azure-storage-blob connect by name themselves, so
each of their connections passes the network guard again and is opened to the address it checked."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest

from skuport.exporting.destinations import get_destination
from skuport.exporting.destinations.base import Delivery, DeliveryError
from tests.exporting.destinations import servers

PUBLIC = "93.184.216.34"  # a global address: what the name answers when the guard first asks


def _dns(monkeypatch: pytest.MonkeyPatch, name: str, answers: Callable[[int], str]) -> list[str]:
    """``name`` resolves to ``answers(n)`` at its n-th lookup (from 1); every other name as usual."""
    real = socket.getaddrinfo
    lookups: list[str] = []

    def resolver(host: str, *args: Any, **kwargs: Any) -> Any:
        if host != name:
            return real(host, *args, **kwargs)
        lookups.append(host)
        return real(answers(len(lookups)), *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    return lookups


def _strict(settings_env: Callable[..., None], allow: str = "") -> None:
    settings_env(allow_private_networks="false", webhook_allow_private="false", network_allow_list=allow)


def _s3(port: int, bucket: str, host: str = "s3.rebind.test") -> dict[str, Any]:
    return {
        "bucket": bucket,
        "region": "eu-west-1",
        "endpointUrl": f"http://{host}:{port}",
        "accessKeyId": "AKIAEXPORTER",
        "secretAccessKey": "pinning-secret",
    }


def _azure(port: int, container: str, host: str = "blob.rebind.test") -> dict[str, Any]:
    return {
        "container": container,
        "accountUrl": f"http://{host}:{port}/devstoreaccount1",
        "accountKey": servers.AZURITE_KEY,
    }


def test_s3_never_connects_to_an_address_the_name_rebinds_to(
    moto_endpoint: str,
    s3_bucket: Any,
    make_file: Callable[..., Delivery],
    settings_env: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bucket, reader = s3_bucket
    _strict(settings_env)
    lookups = _dns(monkeypatch, "s3.rebind.test", lambda n: PUBLIC if n == 1 else "127.0.0.1")
    port = int(moto_endpoint.rsplit(":", 1)[1])
    with pytest.raises(DeliveryError, match="refused by the network policy") as refused:
        get_destination("s3", _s3(port, bucket)).deliver(make_file(b"a,b\n"))
    assert not refused.value.transient, "a refusal is not retried"
    assert len(lookups) >= 2, "checked before connecting, and again by the connection itself"
    assert reader.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


def test_s3_connects_to_the_checked_address_and_keeps_the_name(
    moto_endpoint: str,
    s3_bucket: Any,
    make_file: Callable[..., Delivery],
    settings_env: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bucket, reader = s3_bucket
    _strict(settings_env, allow="127.0.0.1/32")
    # the emulators read the Host header (a name they do not know is taken for a bucket or an account),
    # so the name kept here is one they serve path-style: localhost, answered by this test's resolver
    lookups = _dns(monkeypatch, "localhost", lambda n: "127.0.0.1")
    port = int(moto_endpoint.rsplit(":", 1)[1])
    path = get_destination("s3", _s3(port, bucket, "localhost")).deliver(make_file(b"a,b\n", "pinned.csv"))
    assert path == f"s3://{bucket}/pinned.csv"
    assert reader.get_object(Bucket=bucket, Key="pinned.csv")["Body"].read() == b"a,b\n"
    assert len(lookups) >= 2


def test_azure_never_connects_to_an_address_the_name_rebinds_to(
    azurite_server: servers.Azurite,
    azure_container: Any,
    make_file: Callable[..., Delivery],
    settings_env: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    container, service = azure_container
    _strict(settings_env)
    lookups = _dns(monkeypatch, "blob.rebind.test", lambda n: PUBLIC if n == 1 else "127.0.0.1")
    destination = get_destination("azure-blob", _azure(azurite_server.port, container))
    destination.retry_total = 0  # type: ignore[attr-defined]
    with pytest.raises(DeliveryError, match="refused by the network policy"):
        destination.deliver(make_file(b"a,b\n"))
    assert len(lookups) >= 2
    assert list(service.get_container_client(container).list_blobs()) == []


def test_azure_connects_to_the_checked_address_and_keeps_the_name(
    azurite_server: servers.Azurite,
    azure_container: Any,
    make_file: Callable[..., Delivery],
    settings_env: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    container, service = azure_container
    _strict(settings_env, allow="127.0.0.1/32")
    lookups = _dns(monkeypatch, "localhost", lambda n: "127.0.0.1")
    get_destination("azure-blob", _azure(azurite_server.port, container, "localhost")).deliver(
        make_file(b"a,b\n", "pinned.csv")
    )
    assert service.get_blob_client(container, "pinned.csv").download_blob().readall() == b"a,b\n"
    assert len(lookups) >= 2
