"""Fixtures: real S3 (moto), Azure Blob (Azurite), SFTP (asyncssh) servers and a webhook receiver."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest
from azure.storage.blob import BlobServiceClient

from skuport.config import get_settings
from skuport.exporting.destinations.base import Delivery
from tests.exporting.destinations import servers


@pytest.fixture
def s3_bucket(moto_endpoint: str) -> tuple[str, object]:
    """A fresh bucket and an independent boto3 client to read it back."""
    client = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name="eu-west-1",
        aws_access_key_id="reader",
        aws_secret_access_key="reader-secret",
    )
    bucket = f"exports-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    return bucket, client


@pytest.fixture(scope="session")
def azurite_server() -> Iterator[servers.Azurite]:
    """A running Azurite blob service."""
    with tempfile.TemporaryDirectory(prefix="azurite-") as workdir, servers.azurite(Path(workdir)) as server:
        yield server


@pytest.fixture
def azure_container(azurite_server: servers.Azurite) -> tuple[str, BlobServiceClient]:
    """A fresh container and an independent SDK client to read it back."""
    service = BlobServiceClient.from_connection_string(azurite_server.connection_string)
    name = f"exports-{uuid.uuid4().hex[:12]}"
    service.create_container(name)
    return name, service


@pytest.fixture(scope="session")
def sftp_server() -> Iterator[servers.SftpServer]:
    """A running SFTP server chrooted to a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="sftp-root-") as root, servers.sftp_server(Path(root)) as server:
        yield server


@pytest.fixture
def sftp(sftp_server: servers.SftpServer) -> Iterator[servers.SftpServer]:
    """The SFTP server with its fault knobs reset."""
    sftp_server.state.fail_write_after = None
    sftp_server.state.opened_for_write.clear()
    yield sftp_server
    sftp_server.state.fail_write_after = None


@pytest.fixture(scope="session")
def _receiver() -> Iterator[servers.Receiver]:
    receiver = servers.Receiver()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture
def receiver(_receiver: servers.Receiver) -> Iterator[servers.Receiver]:
    """The webhook receiver, emptied for this test."""
    _receiver.reset()
    yield _receiver
    _receiver.reset()


@pytest.fixture
def fault_proxy() -> Iterator[Callable[[int], servers.FaultProxy]]:
    """Start fault-injecting proxies in front of an upstream port; stopped after the test."""
    started: list[servers.FaultProxy] = []

    def start(upstream_port: int) -> servers.FaultProxy:
        proxy = servers.FaultProxy(upstream_port)
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with servers.black_hole() as port:
        yield port


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on (connection refused)."""
    return servers.free_port()


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Set SKUPORT_* variables for one test (settings cache cleared before and after)."""

    def set_env(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(f"SKUPORT_{name.upper()}", value)
        get_settings.cache_clear()

    yield set_env
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
def allow_private(settings_env: Callable[..., None]) -> None:
    """Loopback receivers are refused by default: allow them explicitly for this test."""
    settings_env(webhook_allow_private="true")


@pytest.fixture
def make_file(tmp_path: Path) -> Callable[..., Delivery]:
    """Write a file and describe it as a Delivery."""

    def make(
        content: bytes,
        filename: str = "products-2026-03-08.csv",
        *,
        content_type: str = "text/csv",
        delivery_id: str = "run-20260308-020000",
    ) -> Delivery:
        path = tmp_path / f"export-{uuid.uuid4().hex[:8]}"
        path.write_bytes(content)
        return Delivery(path=path, filename=filename, content_type=content_type, delivery_id=delivery_id)

    return make
