"""Real servers for the destination tests, started and stopped by the test session itself.

moto (S3) and asyncssh (SFTP) run in this process on port 0; Azurite (npm, installed by
``scripts/test-deps.sh``) runs as a child process; the webhook receiver and a fault-injecting HTTP
proxy are small ``http.server`` servers in threads. Each is stopped through the handle that started it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import http.client
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
AZURITE_BIN = REPO / ".cache" / "azurite" / "node_modules" / ".bin" / "azurite-blob"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- a TCP black hole: accepts connections (kernel backlog) and never answers -------------------------


@contextmanager
def black_hole() -> Iterator[int]:
    """A listening port that never reads or answers: every client times out."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


# --- Azurite --------------------------------------------------------------------------------------------


@dataclass
class Azurite:
    """A running Azurite blob service."""

    port: int
    process: subprocess.Popen[bytes]

    @property
    def endpoint(self) -> str:
        """Account URL (Azurite's path-style account)."""
        return f"http://127.0.0.1:{self.port}/devstoreaccount1"

    @property
    def connection_string(self) -> str:
        """Connection string of the well-known development account."""
        return (
            f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};"
            f"BlobEndpoint={self.endpoint};"
        )


@contextmanager
def azurite(workdir: Path) -> Iterator[Azurite]:
    """Start Azurite on a free port (installing it first if needed); stop it by its handle."""
    if not AZURITE_BIN.exists():
        subprocess.run(["bash", str(REPO / "scripts" / "test-deps.sh")], check=True)
    port = free_port()
    log = workdir / "azurite.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(AZURITE_BIN),
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                str(port),
                "--location",
                str(workdir),
                "--skipApiVersionCheck",
                "--loose",
                "--disableTelemetry",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
    try:
        deadline = time.monotonic() + 30
        while b"successfully listens" not in log.read_bytes():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Azurite did not start: {log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)
        yield Azurite(port=port, process=process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- SFTP: an asyncssh server on its own event loop thread --------------------------------------------


@dataclass
class SftpState:
    """Knobs and records of the test SFTP server."""

    fail_write_after: int | None = None
    opened_for_write: list[str] = field(default_factory=list)


@dataclass
class SftpServer:
    """A running SFTP server (asyncssh), chrooted to ``root``."""

    port: int
    root: Path
    fingerprint: str
    username: str
    password: str
    client_key: str
    client_key_passphrase: str
    state: SftpState
    loop: asyncio.AbstractEventLoop


@contextmanager
def sftp_server(root: Path) -> Iterator[SftpServer]:
    """Start an asyncssh SFTP server on 127.0.0.1 port 0 in a background thread."""
    import asyncssh

    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    passphrase = "client-key-passphrase-9"
    username, password = "exporter", "correct-horse-battery-staple"
    state = SftpState()

    class Server(asyncssh.SSHServer):
        def begin_auth(self, _username: str) -> bool:
            return True

        def password_auth_supported(self) -> bool:
            return True

        def validate_password(self, user: str, given: str) -> bool:
            return user == username and hmac.compare_digest(given, password)

        def public_key_auth_supported(self) -> bool:
            return True

        def validate_public_key(self, user: str, key: Any) -> bool:
            return user == username and key.public_data == client_key.public_data

    class FaultySFTPServer(asyncssh.SFTPServer):
        def __init__(self, chan: Any) -> None:
            super().__init__(chan, chroot=str(root).encode())

        def open(self, path: bytes, pflags: int, attrs: Any) -> Any:
            if pflags & asyncssh.FXF_WRITE:
                state.opened_for_write.append(path.decode())
            return super().open(path, pflags, attrs)

        def write(self, file_obj: Any, offset: int, data: bytes) -> Any:
            if state.fail_write_after is not None and offset + len(data) > state.fail_write_after:
                raise asyncssh.SFTPFailure("disk quota exceeded")
            return super().write(file_obj, offset, data)

    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict[str, Any] = {}

    async def start() -> None:
        holder["server"] = await asyncssh.listen(
            "127.0.0.1",
            0,
            server_host_keys=[host_key],
            server_factory=Server,
            sftp_factory=FaultySFTPServer,
            allow_scp=False,
        )
        started.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=run, name="sftp-server", daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError("SFTP server did not start")
    server = holder["server"]
    port = server.sockets[0].getsockname()[1]
    try:
        yield SftpServer(
            port=port,
            root=root,
            fingerprint=host_key.get_fingerprint("sha256"),
            username=username,
            password=password,
            client_key=client_key.export_private_key("openssh", passphrase=passphrase, rounds=16).decode(),
            client_key_passphrase=passphrase,
            state=state,
            loop=loop,
        )
    finally:

        async def stop() -> None:
            server.close()
            await server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


# --- HTTP: a scripted webhook receiver and a fault-injecting reverse proxy ---------------------------


@dataclass
class Received:
    """One request the receiver got (possibly cut short)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


class _QuietServer(ThreadingHTTPServer):
    """Clients that hang up early (timeouts, cut connections) are expected here, not worth a traceback."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


Action = tuple[Any, ...]
"""("respond", status, headers, body) | ("sleep", seconds, status) | ("drop", bytes_to_read)."""


class Receiver:
    """A webhook receiver whose answers are scripted per request (default: 200)."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.script: list[Action] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: Any) -> None:
                pass

            def _handle(self) -> None:
                with receiver._lock:
                    action = receiver.script.pop(0) if receiver.script else ("respond", 200, {}, b"ok")
                length = int(self.headers.get("Content-Length", "0"))
                if action[0] == "drop":
                    body = self.rfile.read(min(length, action[1]))
                    receiver._record(self, body)
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                body = self.rfile.read(length)
                receiver._record(self, body)
                if action[0] == "sleep":
                    time.sleep(action[1])
                    action = ("respond", action[2], {}, b"late")
                _, status, headers, payload = action
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_POST = do_PUT = _handle

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, name="receiver", daemon=True)
        self.thread.start()

    def _record(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        with self._lock:
            self.requests.append(
                Received(handler.command, handler.path, dict(handler.headers.items()), body, time.monotonic())
            )

    def url(self, path: str = "/hook") -> str:
        """The receiver's URL."""
        return f"http://127.0.0.1:{self.port}{path}"

    def reset(self) -> None:
        """Forget requests and script."""
        with self._lock:
            self.requests.clear()
            self.script.clear()

    def stop(self) -> None:
        """Shut the server down."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


FaultRule = Callable[[str, str, int], tuple[int, dict[str, str], bytes] | None]
"""(method, path with query, index of the matching request) -> a canned failure, or None to forward."""


class FaultProxy:
    """A reverse proxy to ``upstream`` that answers selected requests with a canned error instead."""

    def __init__(self, upstream_port: int) -> None:
        self.rule: FaultRule | None = None
        self.seen: list[tuple[str, str, int]] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: Any) -> None:
                pass

            def _read_body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length", "0")))

            def _handle(self) -> None:
                body = self._read_body()
                with proxy._lock:
                    index = len(proxy.seen)
                    proxy.seen.append((self.command, self.path, len(body)))
                    canned = proxy.rule(self.command, self.path, index) if proxy.rule else None
                if canned is not None:
                    status, headers, payload = canned
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(payload)
                    return
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("transfer-encoding", "connection", "content-length")
                }
                headers["Content-Length"] = str(len(body))
                conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=30)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    response = conn.getresponse()
                    payload = response.read()
                    self.send_response(response.status, response.reason)
                    for name, value in response.getheaders():
                        if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                            self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(payload)
                finally:
                    conn.close()

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, name="fault-proxy", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Shut the proxy down."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def standard_webhooks_signature(secret_key: bytes, msg_id: str, timestamp: str, body: bytes) -> str:
    """An independent v1 signature (for bodies the ``standardwebhooks`` package cannot parse, e.g. gzip)."""
    mac = hmac.new(secret_key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def random_bytes(size: int) -> bytes:
    """Incompressible test data."""
    return os.urandom(size)
