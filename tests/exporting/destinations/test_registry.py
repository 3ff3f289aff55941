"""The destination registry: one dict keyed by the API's type strings, and its helpers."""

from __future__ import annotations

import pytest

from skuport.exporting.destinations import (
    DESTINATIONS,
    get_destination,
    secret_fields,
    validate_config,
)
from skuport.exporting.destinations.base import DestinationConfigError


def test_every_api_type_is_registered_under_its_own_name() -> None:
    assert list(DESTINATIONS) == ["s3", "azure-blob", "sftp", "webhook", "local"]
    for name, cls in DESTINATIONS.items():
        assert cls.type == name
        assert callable(cls.deliver) and callable(cls.test_connection) and callable(cls.destination_path)


@pytest.mark.parametrize("bad_type", ["ftp", "S3", "", None])
def test_unknown_type_is_a_422_naming_the_known_ones(bad_type: object) -> None:
    with pytest.raises(DestinationConfigError) as info:
        get_destination(bad_type, {})  # type: ignore[arg-type]
    assert info.value.status_code == 422
    assert "use one of 's3', 'azure-blob', 'sftp', 'webhook', 'local'" in info.value.message


def test_secret_fields_per_type() -> None:
    assert secret_fields("s3") == {"accessKeyId", "secretAccessKey"}
    assert secret_fields("azure-blob") == {"connectionString", "sasToken", "accountKey"}
    assert secret_fields("sftp") == {"password", "privateKey", "passphrase"}
    assert secret_fields("webhook") == {"url", "secret", "headers.*"}
    assert secret_fields("local") == frozenset()


def test_validation_errors_never_echo_secret_input() -> None:
    with pytest.raises(DestinationConfigError) as info:
        validate_config(
            "sftp",
            {
                "host": "sftp.example.com",
                "username": "u",
                "password": 12345678901,
                "hostKeyFingerprint": "SHA256:nope",
            },
        )
    text = info.value.message + repr(info.value.details)
    assert "12345678901" not in text
    assert {d["field"] for d in info.value.details} == {
        "destinationConfig.password",
        "destinationConfig.hostKeyFingerprint",
    }


def test_config_must_be_an_object() -> None:
    with pytest.raises(DestinationConfigError, match="must be an object"):
        validate_config("local", ["path"])  # type: ignore[arg-type]


def test_destination_paths_follow_the_design_table() -> None:
    assert (
        get_destination("s3", {"bucket": "sigma-exports", "path": "feeds/products/"}).destination_path(
            "products-2026-03-08.csv.gz"
        )
        == "s3://sigma-exports/feeds/products/products-2026-03-08.csv.gz"
    )
    sftp = get_destination(
        "sftp",
        {
            "host": "files.example.com",
            "username": "u",
            "password": "p" * 8,
            "path": "/incoming",
            "hostKeyFingerprint": "SHA256:" + "a" * 43,
        },
    )
    assert sftp.destination_path("f.csv") == "sftp://files.example.com/incoming/f.csv"
    azure = get_destination(
        "azure-blob",
        {
            "container": "feeds",
            "path": "daily",
            "accountUrl": "https://acct.blob.core.windows.net",
            "sasToken": "sv=2024&sig=abc",
        },
    )
    assert azure.destination_path("f.csv") == "https://acct.blob.core.windows.net/feeds/daily/f.csv"
    hook = get_destination("webhook", {"url": "https://user:pw@hooks.example.com/in?token=t"})
    assert hook.destination_path("f.csv") == "https://hooks.example.com/in"
