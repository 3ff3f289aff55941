"""Secrets: encrypted at rest with a rotatable key list, masked for the API, redacted from logs."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator

import pytest

from skuport import secrets
from skuport.config import get_settings
from skuport.exporting.destinations.base import MASK

S3 = {
    "bucket": "sigma-exports",
    "path": "feeds/",
    "region": "eu-west-1",
    "accessKeyId": "AKIAEXAMPLE",
    "secretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
}
UseKeys = Callable[[str], None]
HOOK = {
    "url": "https://hooks.example.com/in",
    "secret": "whsec_c2t1cG9ydC10ZXN0LXNlY3JldA==",
    "headers": {"Authorization": "Bearer live-token-0123456789", "X-Feed": "products"},
}


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> Iterator[UseKeys]:
    """Switch SKUPORT_SECRET_KEY for one test."""

    def use(value: str) -> None:
        monkeypatch.setenv("SKUPORT_SECRET_KEY", value)
        get_settings.cache_clear()

    yield use
    monkeypatch.undo()
    get_settings.cache_clear()


def test_secret_fields_are_encrypted_and_nothing_else(keys: UseKeys) -> None:
    keys("key-one")
    stored = secrets.encrypt_config("s3", S3)
    secret = {"accessKeyId", "secretAccessKey"}  # the key id too: it names the account
    assert {k: v for k, v in stored.items() if k not in secret} == {
        k: v for k, v in S3.items() if k not in secret
    }
    assert set(stored["secretAccessKey"]) == set(stored["accessKeyId"]) == {"$enc"}
    assert S3["secretAccessKey"] not in json.dumps(stored) and S3["accessKeyId"] not in json.dumps(stored)
    assert secrets.decrypt_config("s3", stored) == S3


def test_encrypting_twice_keeps_the_stored_token(keys: UseKeys) -> None:
    keys("key-one")
    once = secrets.encrypt_config("s3", S3)
    assert secrets.encrypt_config("s3", once) == once


def test_webhook_header_values_are_secret_but_their_names_visible(keys: UseKeys) -> None:
    keys("key-one")
    stored = secrets.encrypt_config("webhook", HOOK)
    assert set(stored["headers"]) == {"Authorization", "X-Feed"}
    assert "live-token" not in json.dumps(stored) and "whsec_" not in json.dumps(stored)
    assert secrets.decrypt_config("webhook", stored) == HOOK
    assert secrets.mask_config("webhook", stored) == {
        "url": HOOK["url"],
        "secret": MASK,
        "headers": {"Authorization": MASK, "X-Feed": MASK},
    }


def test_mask_shows_only_which_secrets_are_set() -> None:
    masked = secrets.mask_config(
        "sftp", {"host": "h", "username": "u", "password": "pw-123456", "privateKey": None}
    )
    assert masked == {"host": "h", "username": "u", "password": MASK, "privateKey": None}
    assert secrets.mask_config("local", {"path": "feeds"}) == {"path": "feeds"}


def test_masked_values_sent_back_keep_the_stored_secret(keys: UseKeys) -> None:
    keys("key-one")
    stored = secrets.encrypt_config("webhook", HOOK)
    update = {**secrets.mask_config("webhook", stored), "url": "https://hooks.example.com/v2"}
    update["headers"] = {**update["headers"], "X-Feed": "changed"}
    merged = secrets.encrypt_config("webhook", secrets.keep_masked_secrets("webhook", update, stored))
    plain = secrets.decrypt_config("webhook", merged)
    assert plain == {
        **HOOK,
        "url": "https://hooks.example.com/v2",
        "headers": {"Authorization": HOOK["headers"]["Authorization"], "X-Feed": "changed"},
    }


def test_key_rotation_new_key_first_old_key_still_decrypts(keys: UseKeys) -> None:
    keys("old-key")
    stored = secrets.encrypt_config("s3", S3)

    keys("new-key,old-key")
    assert secrets.decrypt_config("s3", stored) == S3
    rotated = secrets.rotate_config("s3", stored)
    assert rotated != stored

    keys("new-key")
    assert secrets.decrypt_config("s3", rotated) == S3, "re-encrypted under the newest key"
    with pytest.raises(secrets.SecretError, match="could not be decrypted with any key"):
        secrets.decrypt_config("s3", stored)


def test_a_new_value_is_encrypted_with_the_newest_key(keys: UseKeys) -> None:
    keys("new-key,old-key")
    stored = secrets.encrypt_config("s3", S3)
    keys("new-key")
    assert secrets.decrypt_config("s3", stored) == S3


def test_derived_keys_differ_per_secret_and_are_fernet_keys() -> None:
    one, two = secrets.derive_key("a"), secrets.derive_key("b")
    assert one != two and len(one) == 44 and one == secrets.derive_key("a")


def test_log_filter_redacts_known_secrets_and_secret_patterns(
    caplog: pytest.LogCaptureFixture, keys: UseKeys
) -> None:
    keys("key-one")
    plain = secrets.decrypt_config("s3", secrets.encrypt_config("s3", S3))  # decrypting registers the value
    secrets.install_log_redaction(caplog.handler)
    log = logging.getLogger("skuport.test")
    with caplog.at_level(logging.INFO):
        log.info("config %s", plain)
        log.info("GET https://acct.blob.core.windows.net/c/b?sv=2024-01-01&sig=AbCdEf%2B123&se=x")
        log.info("conn AccountKey=Zm9vYmFyYmF6cXV4;EndpointSuffix=core.windows.net")
        log.info("password=hunter2hunter2 and whsec_c2VjcmV0c2VjcmV0")
        try:
            raise RuntimeError(f"boom {S3['secretAccessKey']}")
        except RuntimeError:
            log.exception("failed")
    text = caplog.text
    for secret in (
        S3["secretAccessKey"],
        "AbCdEf%2B123",
        "Zm9vYmFyYmF6cXV4",
        "hunter2hunter2",
        "c2VjcmV0c2VjcmV0",
    ):
        assert secret not in text
    assert "sigma-exports" in text and "sig=" + MASK in text and "AccountKey=" + MASK in text


def test_undecryptable_secret_is_a_clear_error(keys: UseKeys) -> None:
    keys("key-one")
    with pytest.raises(secrets.SecretError) as info:
        secrets.decrypt_config("s3", {"bucket": "b", "secretAccessKey": {"$enc": "not-a-token"}})
    assert "SKUPORT_SECRET_KEY" in info.value.message
