"""Signed download URLs: HMAC over id + expiry, key rotation, tampering, expiry."""

from __future__ import annotations

import datetime as dt

import pytest

from skuport.config import Settings
from skuport.errors import Forbidden
from skuport.exports import signing

NOW = dt.datetime(2026, 3, 8, 10, 30, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(days=7)


def settings(keys: str) -> Settings:
    return Settings(secret_key=keys)


def test_a_signature_verifies_until_it_expires() -> None:
    s = settings("k1")
    expires, signature = signing.sign(s, export_id="exp-a", expires_at=LATER)
    assert expires == int(LATER.timestamp())
    signing.verify(s, export_id="exp-a", expires=str(expires), signature=signature, now=NOW)
    with pytest.raises(Forbidden) as caught:
        signing.verify(s, export_id="exp-a", expires=expires, signature=signature, now=LATER)
    assert caught.value.code == "signature_expired"


@pytest.mark.parametrize("change", ["id", "expires", "signature", "missing"])
def test_tampered_links_are_refused(change: str) -> None:
    s = settings("k1")
    expires, signature = signing.sign(s, export_id="exp-a", expires_at=LATER)
    export_id, exp, sig = "exp-a", str(expires), signature
    if change == "id":
        export_id = "exp-b"
    elif change == "expires":
        exp = str(expires + 86400)
    elif change == "signature":
        sig = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    else:
        sig = ""
    with pytest.raises(Forbidden) as caught:
        signing.verify(s, export_id=export_id, expires=exp, signature=sig, now=NOW)
    assert caught.value.code == "invalid_signature"


def test_a_non_numeric_expiry_is_an_invalid_signature_not_a_crash() -> None:
    with pytest.raises(Forbidden) as caught:
        signing.verify(settings("k1"), export_id="exp-a", expires="tomorrow", signature="ab", now=NOW)
    assert caught.value.code == "invalid_signature"


def test_links_survive_a_key_rotation_but_not_a_removed_key() -> None:
    expires, signature = signing.sign(settings("old"), export_id="exp-a", expires_at=LATER)
    signing.verify(settings("new,old"), export_id="exp-a", expires=expires, signature=signature, now=NOW)
    with pytest.raises(Forbidden):
        signing.verify(settings("new"), export_id="exp-a", expires=expires, signature=signature, now=NOW)


def test_the_download_key_is_not_the_raw_secret() -> None:
    """A signature made with the bare secret (or the JWT key) must not pass."""
    import hashlib
    import hmac

    expires = int(LATER.timestamp())
    raw = hmac.new(b"k1", f"exp-a\n{expires}".encode(), hashlib.sha256).hexdigest()
    with pytest.raises(Forbidden):
        signing.verify(settings("k1"), export_id="exp-a", expires=expires, signature=raw, now=NOW)
