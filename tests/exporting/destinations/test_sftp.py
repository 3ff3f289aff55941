"""SFTP destination against a real SSH server (asyncssh), read back with a separate SFTP client."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import asyncssh
import pytest

from skuport.exporting.destinations import get_destination, validate_config
from skuport.exporting.destinations.base import Delivery, DeliveryError, DestinationConfigError
from skuport.exporting.destinations.sftp import SftpDestination
from skuport.secrets import decrypt_config, encrypt_config, install_log_redaction
from tests.exporting.destinations.servers import SftpServer, random_bytes

# The test key uses few bcrypt rounds to keep the suite fast; bcrypt warns about that.
pytestmark = pytest.mark.filterwarnings("ignore:.*bcrypt.kdf.*called with only:UserWarning")
MiB = 1024 * 1024
Make = Callable[..., Delivery]


def _config(server: SftpServer, **extra: Any) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": server.port,
        "username": server.username,
        "password": server.password,
        "path": "outbound/feeds",
        "hostKeyFingerprint": server.fingerprint,
        **extra,
    }


def _remote(server: SftpServer, op: str, path: str) -> Any:
    """Read the server back with an independent client (asyncssh), logged in by key."""

    async def run() -> Any:
        key = asyncssh.import_private_key(server.client_key, server.client_key_passphrase)
        async with (
            asyncssh.connect(
                "127.0.0.1", server.port, username=server.username, client_keys=[key], known_hosts=None
            ) as conn,
            conn.start_sftp_client() as client,
        ):
            if op == "read":
                async with client.open(path, "rb") as remote_file:
                    return await remote_file.read()
            if op == "exists":
                return await client.exists(path)
            return sorted(await client.listdir(path))

    return asyncio.run(run())


def test_password_login_delivers_through_a_part_file(sftp: SftpServer, make_file: Make) -> None:
    body = b"sku,name\nA-1,Shirt\n"

    path = get_destination("sftp", _config(sftp)).deliver(make_file(body, "products-2026-03-08.csv"))

    assert path == f"sftp://127.0.0.1:{sftp.port}/outbound/feeds/products-2026-03-08.csv"
    assert _remote(sftp, "read", "outbound/feeds/products-2026-03-08.csv") == body
    assert sftp.state.opened_for_write == ["outbound/feeds/.products-2026-03-08.csv.6dc61abafd1f.part"], (
        "the file was written under a temporary name, never under its final one"
    )
    assert _remote(sftp, "list", "outbound/feeds") == [".", "..", "products-2026-03-08.csv"]


def test_encrypted_private_key_and_a_large_file(sftp: SftpServer, make_file: Make) -> None:
    body = random_bytes(6 * MiB + 1)
    config = _config(
        sftp, password=None, privateKey=sftp.client_key, passphrase=sftp.client_key_passphrase, path="keyed"
    )
    SftpDestination({k: v for k, v in config.items() if v is not None}).deliver(make_file(body, "big.bin"))
    assert _remote(sftp, "read", "keyed/big.bin") == body


def test_redelivery_replaces_the_file_atomically(sftp: SftpServer, make_file: Make) -> None:
    dest = SftpDestination(_config(sftp, path="replace"))
    dest.deliver(make_file(b"old", "feed.csv"))
    dest.deliver(make_file(b"new", "feed.csv"))
    assert _remote(sftp, "read", "replace/feed.csv") == b"new"
    assert _remote(sftp, "list", "replace") == [".", "..", "feed.csv"]


def test_changed_host_key_is_refused_before_login(sftp: SftpServer, make_file: Make) -> None:
    other = "SHA256:" + "A" * 43
    with pytest.raises(DeliveryError) as info:
        SftpDestination(_config(sftp, hostKeyFingerprint=other)).deliver(make_file(b"x"))
    message = info.value.message
    assert message.startswith(
        f"SFTP host key verification failed for 127.0.0.1:{sftp.port}: the server "
        f"presented ssh-ed25519 {sftp.fingerprint}, but hostKeyFingerprint is {other}."
    )
    assert sftp.state.opened_for_write == []


def test_unknown_host_key_needs_explicit_trust(sftp: SftpServer, make_file: Make) -> None:
    config = _config(sftp, path="trusted")
    del config["hostKeyFingerprint"]
    with pytest.raises(DestinationConfigError, match="set hostKeyFingerprint"):
        validate_config("sftp", config)
    with pytest.raises(DestinationConfigError):
        SftpDestination(config)
    SftpDestination({**config, "trustUnknownHostKey": True}).deliver(make_file(b"trusted", "t.csv"))
    assert _remote(sftp, "read", "trusted/t.csv") == b"trusted"


def test_wrong_password(sftp: SftpServer, make_file: Make) -> None:
    with pytest.raises(DeliveryError) as info:
        SftpDestination(_config(sftp, password="wrong-password-123")).deliver(make_file(b"x"))
    assert info.value.message == (
        f"SFTP authentication failed for user 'exporter' on 127.0.0.1:{sftp.port}. "
        "Check username and password."
    )


def test_wrong_key_passphrase(sftp: SftpServer, make_file: Make) -> None:
    config = {
        k: v
        for k, v in _config(sftp, privateKey=sftp.client_key, passphrase="not-it").items()
        if k != "password"
    }
    with pytest.raises(DeliveryError, match="SFTP privateKey could not be read"):
        SftpDestination(config).deliver(make_file(b"x"))


def test_unreachable_host(closed_port: int, sftp: SftpServer, make_file: Make) -> None:
    with pytest.raises(DeliveryError) as info:
        SftpDestination(_config(sftp, port=closed_port)).deliver(make_file(b"x"))
    assert info.value.message == (
        f"SFTP connect failed: cannot reach 127.0.0.1:{closed_port} (Connection "
        "refused). Check host and port, and that the server accepts connections."
    )


def test_server_that_never_answers_times_out(black_hole: int, sftp: SftpServer, make_file: Make) -> None:
    started = time.monotonic()
    with pytest.raises(DeliveryError) as info:
        SftpDestination(_config(sftp, port=black_hole, timeoutSeconds=0.5)).deliver(make_file(b"x"))
    assert info.value.message.startswith(f"SFTP handshake with 127.0.0.1:{black_hole} failed: no SSH answer")
    assert time.monotonic() - started < 5


def test_server_error_mid_transfer_removes_the_part_file_and_keeps_the_old_one(
    sftp: SftpServer, make_file: Make
) -> None:
    dest = SftpDestination(_config(sftp, path="failing"))
    dest.deliver(make_file(b"yesterday", "feed.csv"))
    sftp.state.fail_write_after = 1 * MiB

    with pytest.raises(DeliveryError) as info:
        dest.deliver(make_file(random_bytes(3 * MiB), "feed.csv"))

    part = "failing/.feed.csv.6dc61abafd1f.part"  # named after the delivery: a retry replaces it
    assert info.value.message.startswith(f"SFTP write failed: disk quota exceeded ({part}).")
    assert _remote(sftp, "list", "failing") == [".", "..", "feed.csv"], "the .part file was removed"
    assert _remote(sftp, "read", "failing/feed.csv") == b"yesterday"


def test_secrets_stay_out_of_errors_and_debug_logs(
    sftp: SftpServer, caplog: pytest.LogCaptureFixture, make_file: Make
) -> None:
    install_log_redaction(caplog.handler)
    plain = _config(sftp, password="Wrong-But-Secret-Password-77")
    with caplog.at_level(logging.DEBUG), pytest.raises(DeliveryError) as info:
        get_destination("sftp", decrypt_config("sftp", encrypt_config("sftp", plain))).deliver(
            make_file(b"x")
        )
    keyed = {**_config(sftp, privateKey=sftp.client_key, passphrase="Wrong-Passphrase-77"), "password": None}
    keyed = {k: v for k, v in keyed.items() if v is not None}
    with caplog.at_level(logging.DEBUG), pytest.raises(DeliveryError) as info2:
        get_destination("sftp", decrypt_config("sftp", encrypt_config("sftp", keyed))).deliver(
            make_file(b"x")
        )
    assert "paramiko" in caplog.text, "paramiko's debug log was captured"
    for secret in ("Wrong-But-Secret-Password-77", "Wrong-Passphrase-77", sftp.client_key.splitlines()[1]):
        assert secret not in caplog.text
        assert secret not in info.value.message and secret not in info2.value.message


def test_connection_test_checks_host_key_login_and_folder(sftp: SftpServer) -> None:
    (sftp.root / "exists").mkdir(exist_ok=True)
    SftpDestination(_config(sftp, path="exists")).test_connection()
    with pytest.raises(DeliveryError, match=r"SFTP stat failed: .*\(missing-folder\)"):
        SftpDestination(_config(sftp, path="missing-folder")).test_connection()
    with pytest.raises(DeliveryError, match="host key verification failed"):
        SftpDestination(_config(sftp, hostKeyFingerprint="SHA256:" + "B" * 43)).test_connection()
