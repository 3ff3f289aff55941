"""Azure Blob destination against a real Azurite, read back with an independent Azure SDK client."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas

from skuport.exporting.destinations import get_destination, validate_config
from skuport.exporting.destinations.azure_blob import AzureBlobDestination
from skuport.exporting.destinations.base import Delivery, DeliveryError, DestinationConfigError
from skuport.secrets import decrypt_config, encrypt_config, install_log_redaction
from tests.exporting.destinations import servers

MiB = 1024 * 1024
KEY = servers.AZURITE_KEY


def _blob_names(service: BlobServiceClient, container: str, *, uncommitted: bool = False) -> list[str]:
    client = service.get_container_client(container)
    return [b.name for b in client.list_blobs(include=["uncommittedblobs"] if uncommitted else None)]


def _sas(container: str, *, write: bool = True) -> str:
    return generate_container_sas(
        account_name="devstoreaccount1",
        container_name=container,
        account_key=KEY,
        permission=ContainerSasPermissions(read=True, write=write, create=write, delete=write),
        expiry=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
    )


def test_delivers_with_a_connection_string(
    azurite_server: servers.Azurite, azure_container: Any, make_file: Callable[..., Delivery]
) -> None:
    container, service = azure_container
    body = gzip.compress(b"sku;name\nA-1;Shirt\n")
    config = {
        "container": container,
        "path": "feeds/products",
        "connectionString": azurite_server.connection_string,
    }

    path = get_destination("azure-blob", config).deliver(
        make_file(body, "products.csv.gz", content_type="application/gzip")
    )

    assert path == f"{azurite_server.endpoint}/{container}/feeds/products/products.csv.gz"
    blob = service.get_blob_client(container, "feeds/products/products.csv.gz")
    # the SDK's default download hands back the gzip bytes: nothing tells it to decompress them
    assert blob.download_blob().readall() == body
    props = blob.get_blob_properties()
    assert props.content_settings.content_type == "application/gzip"
    assert props.content_settings.content_encoding is None


def test_large_file_is_staged_in_blocks_then_committed(
    azurite_server: servers.Azurite, azure_container: Any, make_file: Callable[..., Delivery]
) -> None:
    container, service = azure_container
    body = servers.random_bytes(6 * MiB + 7)
    config = {"container": container, "accountUrl": azurite_server.endpoint, "accountKey": KEY}

    AzureBlobDestination(config).deliver(make_file(body, "big.bin"))

    blob = service.get_blob_client(container, "big.bin")
    committed, uncommitted = blob.get_block_list("all")
    assert [b.size for b in committed] == [4 * MiB, 2 * MiB + 7]
    assert uncommitted == []
    assert blob.download_blob().readall() == body


def test_delivers_with_a_sas_token_and_keeps_it_out_of_the_path(
    azurite_server: servers.Azurite, azure_container: Any, make_file: Callable[..., Delivery]
) -> None:
    container, service = azure_container
    config = {
        "container": container,
        "accountUrl": azurite_server.endpoint,
        "sasToken": "?" + _sas(container),
    }

    path = AzureBlobDestination(config).deliver(make_file(b"via sas", "sas.csv"))

    assert path == f"{azurite_server.endpoint}/{container}/sas.csv"
    assert service.get_blob_client(container, "sas.csv").download_blob().readall() == b"via sas"


def test_wrong_account_key_is_refused_with_advice(
    azurite_server: servers.Azurite, azure_container: Any, make_file: Callable[..., Delivery]
) -> None:
    container, service = azure_container
    wrong = base64.b64encode(b"not-the-key-" * 6).decode()
    config = {"container": container, "accountUrl": azurite_server.endpoint, "accountKey": wrong}

    with pytest.raises(DeliveryError) as info:
        AzureBlobDestination(config).deliver(make_file(b"x"))

    assert info.value.message.startswith(
        "Azure Blob Get Blob Properties failed: Server failed to authenticate the request "
        "(403, AuthorizationFailure). Check the account key, SAS"
    )
    assert wrong not in info.value.message
    assert _blob_names(service, container, uncommitted=True) == []


def test_read_only_sas_cannot_write(
    azurite_server: servers.Azurite, azure_container: Any, make_file: Callable[..., Delivery]
) -> None:
    container, service = azure_container
    sas = _sas(container, write=False)
    config = {"container": container, "accountUrl": azurite_server.endpoint, "sasToken": sas}
    with pytest.raises(DeliveryError) as info:
        AzureBlobDestination(config).deliver(make_file(b"x"))
    assert "Azure Blob Put Block failed" in info.value.message and "(403" in info.value.message
    assert "sig=" not in info.value.message and sas not in info.value.message
    assert _blob_names(service, container, uncommitted=True) == []


def test_missing_container(azurite_server: servers.Azurite, make_file: Callable[..., Delivery]) -> None:
    config = {"container": "no-such-container", "connectionString": azurite_server.connection_string}
    with pytest.raises(DeliveryError) as info:
        AzureBlobDestination(config).deliver(make_file(b"x"))
    assert "(404, ContainerNotFound)" in info.value.message
    assert "Check that container 'no-such-container' exists" in info.value.message


def test_unreachable_account(closed_port: int, make_file: Callable[..., Delivery]) -> None:
    url = f"http://127.0.0.1:{closed_port}/devstoreaccount1"
    dest = AzureBlobDestination({"container": "exports", "accountUrl": url, "accountKey": KEY})
    dest.retry_total = 0
    with pytest.raises(DeliveryError) as info:
        dest.deliver(make_file(b"x"))
    assert info.value.message == (
        f"Azure Blob Get Blob Properties failed: could not connect to {url}. "
        "Check the account URL / BlobEndpoint and that the server can reach it."
    )


def test_account_that_never_answers_times_out(black_hole: int, make_file: Callable[..., Delivery]) -> None:
    url = f"http://127.0.0.1:{black_hole}/devstoreaccount1"
    dest = AzureBlobDestination(
        {"container": "exports", "accountUrl": url, "accountKey": KEY, "timeoutSeconds": 0.3}
    )
    dest.retry_total = 0
    started = time.monotonic()
    with pytest.raises(DeliveryError) as info:
        dest.deliver(make_file(b"x"))
    assert "timed out after 0.3 s" in info.value.message
    assert time.monotonic() - started < 5


def test_server_error_mid_upload_leaves_no_blob_and_no_blocks(
    azurite_server: servers.Azurite,
    azure_container: Any,
    fault_proxy: Callable[[int], servers.FaultProxy],
    make_file: Callable[..., Delivery],
) -> None:
    container, service = azure_container
    proxy = fault_proxy(azurite_server.port)
    put_blocks: list[int] = []

    def second_block_fails(method: str, path: str, index: int) -> tuple[int, dict[str, str], bytes] | None:
        if method == "PUT" and "comp=block&" in path:
            put_blocks.append(index)
            if len(put_blocks) >= 2:
                return (
                    500,
                    {"x-ms-error-code": "InternalError", "Content-Type": "application/xml"},
                    b"<?xml version='1.0'?><Error><Code>InternalError</Code>"
                    b"<Message>The server encountered an internal error.</Message></Error>",
                )
        return None

    proxy.rule = second_block_fails
    url = f"http://127.0.0.1:{proxy.port}/devstoreaccount1"
    dest = AzureBlobDestination({"container": container, "accountUrl": url, "accountKey": KEY})
    dest.retry_total = 1
    dest.retry_initial_backoff = 0.1

    with pytest.raises(DeliveryError) as info:
        dest.deliver(make_file(servers.random_bytes(6 * MiB), "big.csv"))

    assert info.value.message == (
        "Azure Blob Put Block failed: The server encountered an internal error "
        "(500, InternalError). The storage service failed; the run can be retried."
    )
    assert len(put_blocks) == 3, "first block staged, second failed and was retried once"
    assert _blob_names(service, container, uncommitted=True) == []
    with pytest.raises(ResourceNotFoundError):
        service.get_blob_client(container, "big.csv").get_block_list("uncommitted")


def test_failed_redelivery_keeps_the_previous_file(
    azurite_server: servers.Azurite,
    azure_container: Any,
    fault_proxy: Callable[[int], servers.FaultProxy],
    make_file: Callable[..., Delivery],
) -> None:
    container, service = azure_container
    config = {"container": container, "connectionString": azurite_server.connection_string}
    AzureBlobDestination(config).deliver(make_file(b"yesterday", "feed.csv"))
    proxy = fault_proxy(azurite_server.port)
    proxy.rule = lambda method, path, _i: (
        (503, {"x-ms-error-code": "ServerBusy"}, b"")
        if method == "PUT" and "comp=blocklist" in path
        else None
    )
    url = f"http://127.0.0.1:{proxy.port}/devstoreaccount1"
    dest = AzureBlobDestination({"container": container, "accountUrl": url, "accountKey": KEY})
    dest.retry_total = 0

    with pytest.raises(DeliveryError, match=r"Put Block List failed: .*\(503, ServerBusy\)"):
        dest.deliver(make_file(b"today, but broken", "feed.csv"))

    assert service.get_blob_client(container, "feed.csv").download_blob().readall() == b"yesterday"


def test_secrets_stay_out_of_errors_and_debug_logs(
    azurite_server: servers.Azurite,
    azure_container: Any,
    caplog: pytest.LogCaptureFixture,
    make_file: Callable[..., Delivery],
) -> None:
    container, _ = azure_container
    sas = _sas(container, write=False)
    install_log_redaction(caplog.handler)
    for plain in (
        {"container": container, "accountUrl": azurite_server.endpoint, "sasToken": sas},
        {"container": "no-such-container", "connectionString": azurite_server.connection_string},
    ):
        config = decrypt_config("azure-blob", encrypt_config("azure-blob", plain))
        with caplog.at_level(logging.DEBUG), pytest.raises(DeliveryError) as info:
            get_destination("azure-blob", config).deliver(make_file(b"x"))
        for secret in (sas, KEY, azurite_server.connection_string):
            assert secret not in info.value.message
            assert secret not in caplog.text
        sig = next(part for part in sas.split("&") if part.startswith("sig="))
        assert sig not in caplog.text
    assert "azure" in caplog.text.lower(), "the SDK's debug logging was captured"


def test_config_validation(azurite_server: servers.Azurite) -> None:
    ok = validate_config("azure-blob", {"container": "exports", "connectionString": "x=y"})
    assert ok["container"] == "exports"
    for bad in (
        {"container": "exports"},
        {"container": "exports", "accountUrl": azurite_server.endpoint},
        {"container": "exports", "accountUrl": azurite_server.endpoint, "sasToken": "a", "accountKey": "b"},
        {"container": "Ex", "connectionString": "x"},
        {"container": "exports", "connectionString": "x", "accountKey": "b"},
    ):
        with pytest.raises(DestinationConfigError):
            validate_config("azure-blob", bad)


def test_connection_test_proves_write_access(azurite_server: servers.Azurite, azure_container: Any) -> None:
    container, service = azure_container
    AzureBlobDestination(
        {"container": container, "connectionString": azurite_server.connection_string}
    ).test_connection()
    assert _blob_names(service, container, uncommitted=True) == [], "the probe cleaned up after itself"
    read_only = {
        "container": container,
        "accountUrl": azurite_server.endpoint,
        "sasToken": _sas(container, write=False),
    }
    with pytest.raises(DeliveryError, match=r"Azure Blob Put Block failed: .*\(403"):
        AzureBlobDestination(read_only).test_connection()
