"""The SFTP destination (paramiko): pinned host key, upload to ``.name.part``, then an atomic rename."""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import hashlib
import hmac
import io
import logging
import posixpath
import socket
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import paramiko
from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

from skuport.exporting.destinations import network
from skuport.exporting.destinations.base import (
    Delivery,
    DeliveryError,
    DestinationConfig,
    Fence,
    check_relative_path,
    parse_config,
    redact,
)

log = logging.getLogger(__name__)

CHUNK = 32 * 1024
_KEY_TYPES: tuple[type[paramiko.PKey], ...] = (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey)


class SftpConfig(DestinationConfig):
    """Server, account, folder and the host key fingerprint the server must present."""

    host: str = Field(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9.\-:\[\]]+$")
    port: int = Field(default=22, ge=1, le=65535)
    username: str = Field(min_length=1, max_length=256)
    password: str | None = None
    private_key: str | None = None
    passphrase: str | None = None
    path: str = ""
    host_key_fingerprint: str | None = Field(default=None, pattern=r"^SHA256:[A-Za-z0-9+/]{43}=?$")
    trust_unknown_host_key: bool = False
    timeout_seconds: float = Field(default=30, gt=0, le=600)

    @field_validator("host")
    @classmethod
    def _guarded(cls, value: str, info: ValidationInfo) -> str:
        if network.at_create(info):
            network.check_host(value, 22)
        return value

    @field_validator("path")
    @classmethod
    def _safe(cls, value: str) -> str:
        return check_relative_path(value, what="path")

    @model_validator(mode="after")
    def _auth_and_host_key(self) -> SftpConfig:
        if not self.password and not self.private_key:
            raise ValueError("set password or privateKey")
        if not self.host_key_fingerprint and not self.trust_unknown_host_key:
            raise ValueError(
                "set hostKeyFingerprint (e.g. 'SHA256:…' from `ssh-keyscan HOST | ssh-keygen -lf -`), "
                "or trustUnknownHostKey: true to accept any host key (not recommended)"
            )
        return self


_KEY_CLASSES: dict[str, type[Any]] = {
    "rsa": paramiko.RSAKey,
    "ecdsa": paramiko.ECDSAKey,
    "ed25519": paramiko.Ed25519Key,
}


def _key_class(text: str) -> type[Any] | None:
    """The key class of a private key, read from its unencrypted header (decrypting is slow: bcrypt)."""
    if "BEGIN RSA PRIVATE KEY" in text:
        return _KEY_CLASSES["rsa"]
    if "BEGIN EC PRIVATE KEY" in text:
        return _KEY_CLASSES["ecdsa"]
    if "BEGIN OPENSSH PRIVATE KEY" not in text:
        return None
    body = "".join(line for line in text.splitlines() if line and not line.startswith("-----"))
    try:
        blob = base64.b64decode(body)
        if not blob.startswith(b"openssh-key-v1\0"):
            return None
        offset = len(b"openssh-key-v1\0")
        for _ in range(3):  # cipher name, KDF name, KDF options
            offset += 4 + int.from_bytes(blob[offset : offset + 4], "big")
        offset += 4 + 4  # number of keys, then the length of the first public key
        type_length = int.from_bytes(blob[offset : offset + 4], "big")
        key_type = blob[offset + 4 : offset + 4 + type_length].decode()
    except (ValueError, UnicodeDecodeError, binascii.Error):
        return None
    if key_type == "ssh-ed25519":
        return _KEY_CLASSES["ed25519"]
    if key_type == "ssh-rsa":
        return _KEY_CLASSES["rsa"]
    if key_type.startswith("ecdsa-sha2-"):
        return _KEY_CLASSES["ecdsa"]
    return None


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's ``SHA256:…`` fingerprint of a public key."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


class SftpDestination:
    """Deliver over SFTP; a reader never sees a partial file."""

    config_model: ClassVar[type[BaseModel]] = SftpConfig
    type: ClassVar[str] = "sftp"
    secret_fields: ClassVar[frozenset[str]] = frozenset({"password", "privateKey", "passphrase"})
    can_remove: ClassVar[bool] = True

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = parse_config(SftpConfig, config, type_=self.type)

    def _remote(self, filename: str) -> str:
        try:
            check_relative_path(filename, what="file name", allow_empty=False)
        except ValueError as exc:
            raise DeliveryError(f"SFTP delivery refused: {exc}.") from None
        base = self.config.path.rstrip("/")
        return posixpath.join(base, filename) if base else filename

    def destination_path(self, filename: str) -> str:
        """``sftp://host[:port]/path``."""
        cfg = self.config
        netloc = cfg.host if cfg.port == 22 else f"{cfg.host}:{cfg.port}"
        remote = self._remote(filename)
        return (
            f"sftp://{netloc}/{remote.lstrip('/')}"
            if not remote.startswith("/")
            else f"sftp://{netloc}{remote}"
        )

    def test_connection(self) -> None:
        """Connect, verify the host key, log in and check the folder."""
        with self._session() as sftp:
            folder = self.config.path.rstrip("/") or "."
            self._op("stat", lambda: sftp.stat(folder), folder)

    def deliver(self, delivery: Delivery) -> str:
        """Upload to ``.name.part`` beside the target, then rename it over the target."""
        remote = self._remote(delivery.filename)
        folder, name = posixpath.split(remote)
        part = posixpath.join(folder, f".{name}{delivery.part_suffix}")
        with self._session() as sftp:
            if folder:
                self._makedirs(sftp, folder)
            try:
                self._op("write", lambda: self._upload(sftp, delivery, part), part)
                delivery.before_visible()
                self._op("rename", lambda: sftp.posix_rename(part, remote), remote)
            except BaseException:
                with contextlib.suppress(Exception):
                    sftp.remove(part)
                raise
        path = self.destination_path(delivery.filename)
        log.info("delivered %s to %s", delivery.filename, path)
        return path

    def remove(self, filenames: Sequence[str], fence: Fence) -> None:
        """Delete these files where present."""
        with self._session() as sftp:
            for filename in filenames:
                remote = self._remote(filename)
                fence.check()
                self._op("remove", functools.partial(_remove_if_there, sftp, remote), remote)
                log.info("removed %s", self.destination_path(filename))

    def _upload(self, sftp: paramiko.SFTPClient, delivery: Delivery, part: str) -> None:
        """Write the file (pipelined), then prove the server stored every byte."""
        size = delivery.path.stat().st_size
        with delivery.path.open("rb") as src, sftp.open(part, "wb") as remote_file:
            remote_file.set_pipelined(True)
            while chunk := src.read(CHUNK):
                delivery.between_chunks()
                remote_file.write(chunk)
            remote_file.flush()
            # Pipelined writes' answers are not read until close, which swallows a refusal: read them
            # now (as paramiko does itself when its queue is long) so the server's reason surfaces.
            pending = getattr(remote_file, "_reqs", None)
            while pending:
                sftp._read_response(pending.popleft())
            stored = remote_file.stat().st_size
        if stored != size:
            raise OSError(f"the server stored {stored} of {size} bytes")

    def _makedirs(self, sftp: paramiko.SFTPClient, folder: str) -> None:
        current = "/" if folder.startswith("/") else ""
        for part in folder.strip("/").split("/"):
            current = posixpath.join(current, part) if current else part
            try:
                sftp.stat(current)
            except OSError:
                self._op("mkdir", lambda c=current: sftp.mkdir(c), current)

    def _op(self, operation: str, func: Any, remote: str) -> Any:
        try:
            return func()
        except OSError as exc:
            reason = exc.strerror or (exc.args[0] if exc.args else type(exc).__name__)
            if isinstance(exc, PermissionError) or "permission" in str(reason).lower():
                hint = f"Check that user '{self.config.username}' may write to '{remote}'."
            elif isinstance(exc, FileNotFoundError) or "no such file" in str(reason).lower():
                hint = f"Check that the folder of '{remote}' exists on the server (config path)."
            else:
                hint = "The server refused or failed the operation; check its free space and logs."
            raise self._fail(f"SFTP {operation} failed: {reason} ({remote}). {hint}") from None
        except (paramiko.SSHException, EOFError) as exc:
            raise self._fail(
                f"SFTP {operation} failed: the connection broke ({exc or type(exc).__name__}). "
                "The run can be retried; check the server's logs if it repeats.",
                transient=True,
            ) from None

    @contextlib.contextmanager
    def _session(self) -> Iterator[paramiko.SFTPClient]:
        """A logged-in SFTP session whose server presented the expected host key."""
        cfg = self.config
        where = f"{cfg.host}:{cfg.port}"
        address = network.resolve_checked(cfg.host, cfg.port, what="SFTP connect")
        try:
            # Connect to the address the guard checked, whatever DNS says by now.
            sock = socket.create_connection((address, cfg.port), timeout=cfg.timeout_seconds)
        except TimeoutError:
            raise self._fail(
                f"SFTP connect failed: {where} did not answer within {cfg.timeout_seconds:g} s. "
                "Check host, port and firewalls, or raise timeoutSeconds.",
                transient=True,
            ) from None
        except OSError as exc:
            raise self._fail(
                f"SFTP connect failed: cannot reach {where} ({exc.strerror or exc}). "
                "Check host and port, and that the server accepts connections.",
                transient=True,
            ) from None
        transport = paramiko.Transport(sock)
        transport.banner_timeout = cfg.timeout_seconds
        transport.handshake_timeout = cfg.timeout_seconds
        try:
            try:
                transport.start_client(timeout=cfg.timeout_seconds)
            except (paramiko.SSHException, EOFError, OSError) as exc:
                timed_out = isinstance(exc, TimeoutError) or any(
                    word in str(exc).lower() for word in ("timeout", "timed out", "banner")
                )
                reason = (
                    f"no SSH answer within {cfg.timeout_seconds:g} s"
                    if timed_out
                    else str(exc) or type(exc).__name__
                )
                raise self._fail(
                    f"SFTP handshake with {where} failed: {reason}. Check that host and port "
                    "point at an SSH server, or raise timeoutSeconds."
                ) from None
            if not transport.is_active() or not transport.initial_kex_done:  # start_client's own timeout
                raise self._fail(
                    f"SFTP handshake with {where} failed: no SSH answer within "
                    f"{cfg.timeout_seconds:g} s. Check that host and port point at an SSH "
                    "server, or raise timeoutSeconds."
                )
            self._check_host_key(transport.get_remote_server_key())
            self._authenticate(transport)
            try:
                sftp = paramiko.SFTPClient.from_transport(transport)
            except (paramiko.SSHException, EOFError, OSError) as exc:
                raise self._fail(
                    f"SFTP subsystem on {where} could not be opened: {exc}. "
                    "Check that the server allows SFTP for this user."
                ) from None
            if sftp is None:
                raise self._fail(f"SFTP subsystem on {where} could not be opened.")
            channel = sftp.get_channel()
            if channel is not None:
                channel.settimeout(cfg.timeout_seconds)
            try:
                yield sftp
            finally:
                sftp.close()
        finally:
            transport.close()

    def _check_host_key(self, key: paramiko.PKey) -> None:
        cfg = self.config
        seen = fingerprint(key)
        if cfg.host_key_fingerprint:
            expected = cfg.host_key_fingerprint.rstrip("=")
            if not hmac.compare_digest(seen, expected):
                raise self._fail(
                    f"SFTP host key verification failed for {cfg.host}:{cfg.port}: the server presented "
                    f"{key.get_name()} {seen}, but hostKeyFingerprint is {expected}. The host key changed or "
                    "someone is intercepting the connection; update hostKeyFingerprint only if you know "
                    "the server's key was replaced."
                )
        elif not cfg.trust_unknown_host_key:  # the config model already refuses this, but be sure
            raise self._fail(
                f"SFTP host key of {cfg.host}:{cfg.port} is unknown ({seen}); "
                "set hostKeyFingerprint to it if that is the server's key."
            )

    def _authenticate(self, transport: paramiko.Transport) -> None:
        cfg = self.config
        who = f"user '{cfg.username}' on {cfg.host}:{cfg.port}"
        try:
            if cfg.private_key:
                transport.auth_publickey(cfg.username, self._load_key())
            else:
                transport.auth_password(cfg.username, cfg.password or "")
        except paramiko.AuthenticationException:
            method = "privateKey (and passphrase)" if cfg.private_key else "password"
            raise self._fail(f"SFTP authentication failed for {who}. Check username and {method}.") from None
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise self._fail(f"SFTP login failed for {who}: {exc or type(exc).__name__}.") from None

    def _load_key(self) -> paramiko.PKey:
        cfg = self.config
        text = (cfg.private_key or "").strip() + "\n"
        known = _key_class(text)
        for key_type in (known,) if known else _KEY_TYPES:
            try:
                return key_type.from_private_key(io.StringIO(text), password=cfg.passphrase or None)
            except paramiko.PasswordRequiredException:
                raise self._fail("SFTP privateKey is encrypted: set passphrase.") from None
            except (paramiko.SSHException, ValueError, TypeError):
                continue
        raise self._fail(
            "SFTP privateKey could not be read: expected an OpenSSH or PEM private key "
            "(Ed25519, ECDSA or RSA), with the right passphrase if it is encrypted."
        )

    def _fail(self, message: str, *, transient: bool = False) -> DeliveryError:
        cfg = self.config
        return DeliveryError(
            redact(message, [cfg.password, cfg.private_key, cfg.passphrase]), transient=transient
        )


def _remove_if_there(sftp: paramiko.SFTPClient, remote: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        sftp.remove(remote)
