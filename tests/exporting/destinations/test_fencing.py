"""The fence: every destination checks the lease right before its visible step, against the real server.

A fence that is revoked (the run timed out, was deleted, reaped or shut down) before the last step
leaves nothing a reader can see and nothing half-written: no object, no blob, no file, no POST.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from skuport.errors import WorkStopped
from skuport.exporting.destinations.azure_blob import AzureBlobDestination
from skuport.exporting.destinations.base import Delivery
from skuport.exporting.destinations.local import LocalDestination
from skuport.exporting.destinations.s3 import S3Destination
from skuport.exporting.destinations.sftp import SftpDestination
from skuport.exporting.destinations.webhook import WebhookDestination
from tests.exporting.destinations import servers

pytestmark = pytest.mark.filterwarnings("ignore:.*bcrypt.kdf.*called with only:UserWarning")
MiB = 1024 * 1024


class Fence:
    """A lease stand-in that holds for ``allowed`` checks, then is lost."""

    def __init__(self, allowed: int = 0) -> None:
        self.allowed = allowed
        self.checks = 0
        self.cancel = threading.Event()

    def check(self) -> None:
        self.checks += 1
        if self.checks > self.allowed:
            self.cancel.set()
            raise WorkStopped("gone")


def fenced(delivery: Delivery, fence: Fence) -> Delivery:
    return replace(delivery, fence=fence)


def test_local_leaves_neither_file_nor_part(
    tmp_path: Path, settings_env: Callable[..., None], make_file: Callable[..., Delivery]
) -> None:
    settings_env(local_root=str(tmp_path / "root"))
    fence = Fence()
    with pytest.raises(WorkStopped):
        LocalDestination({"path": "feeds"}).deliver(fenced(make_file(b"x" * 3 * MiB), fence))
    assert fence.checks == 1 and list((tmp_path / "root" / "feeds").iterdir()) == []


def test_local_part_name_is_the_delivery_s_so_a_retry_replaces_it(
    tmp_path: Path, settings_env: Callable[..., None], make_file: Callable[..., Delivery]
) -> None:
    settings_env(local_root=str(tmp_path / "root"))
    delivery = make_file(b"new content")
    leftover = tmp_path / "root" / "feeds" / f".{delivery.filename}{delivery.part_suffix}"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"what a killed attempt left" * 1000)
    LocalDestination({"path": "feeds"}).deliver(delivery)
    assert [p.name for p in leftover.parent.iterdir()] == [delivery.filename]
    assert (leftover.parent / delivery.filename).read_bytes() == b"new content"


@pytest.mark.parametrize("size", [1024, 11 * MiB], ids=["put", "multipart"])
def test_s3_completes_nothing_and_aborts_its_upload(
    moto_endpoint: str, s3_bucket: Any, size: int, make_file: Callable[..., Delivery]
) -> None:
    bucket, reader = s3_bucket
    config = {
        "bucket": bucket,
        "path": "feeds",
        "region": "eu-west-1",
        "endpointUrl": moto_endpoint,
        "accessKeyId": "a",
        "secretAccessKey": "b",
    }
    with pytest.raises(WorkStopped):
        S3Destination(config).deliver(fenced(make_file(b"y" * size), Fence()))
    assert reader.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
    assert reader.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_s3_aborts_the_multipart_upload_a_killed_attempt_left(
    moto_endpoint: str, s3_bucket: Any, make_file: Callable[..., Delivery]
) -> None:
    bucket, reader = s3_bucket
    key = "feeds/products-2026-03-08.csv"
    reader.create_multipart_upload(Bucket=bucket, Key=key)  # what a kill -9 mid-transfer leaves
    config = {
        "bucket": bucket,
        "path": "feeds",
        "region": "eu-west-1",
        "endpointUrl": moto_endpoint,
        "accessKeyId": "a",
        "secretAccessKey": "b",
    }
    S3Destination(config).deliver(make_file(b"z" * 6 * MiB))
    assert reader.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert reader.head_object(Bucket=bucket, Key=key)["ContentLength"] == 6 * MiB


def test_azure_commits_no_block_list(
    azurite_server: servers.Azurite, azure_container: Any, make_file: Callable[..., Delivery]
) -> None:
    container, service = azure_container
    destination = AzureBlobDestination(
        {"container": container, "path": "feeds", "connectionString": azurite_server.connection_string}
    )
    destination.block_size = 1 * MiB
    with pytest.raises(WorkStopped):
        destination.deliver(fenced(make_file(b"b" * 3 * MiB), Fence()))
    listed = service.get_container_client(container).list_blobs(include=["uncommittedblobs"])
    assert [b.name for b in listed] == []


def test_sftp_renames_nothing_and_removes_its_part(
    sftp_server: servers.SftpServer, make_file: Callable[..., Delivery]
) -> None:
    config = {
        "host": "127.0.0.1",
        "port": sftp_server.port,
        "username": sftp_server.username,
        "password": sftp_server.password,
        "path": "fenced/feeds",
        "hostKeyFingerprint": sftp_server.fingerprint,
    }
    with pytest.raises(WorkStopped):
        SftpDestination(config).deliver(fenced(make_file(b"s" * MiB), Fence()))
    folder = sftp_server.root / "fenced" / "feeds"
    assert list(folder.iterdir()) == []


def test_webhook_posts_nothing_once_the_lease_is_lost(
    receiver: servers.Receiver, allow_private: None, make_file: Callable[..., Delivery]
) -> None:
    receiver.script = [("respond", 503, {}, b"busy")]
    destination = WebhookDestination({"url": receiver.url(), "maxAttempts": 5})
    destination.backoff_base = 0.01
    fence = Fence(allowed=1)  # the first attempt may go; the lease is lost before the second
    with pytest.raises(WorkStopped):
        destination.deliver(fenced(make_file(b"w"), fence))
    assert len(receiver.requests) == 1 and fence.checks == 2


def test_a_cancel_stops_a_transfer_between_chunks(
    tmp_path: Path, settings_env: Callable[..., None], make_file: Callable[..., Delivery]
) -> None:
    settings_env(local_root=str(tmp_path / "root"))
    fence = Fence(allowed=10)
    fence.cancel.set()  # cancelled (e.g. a timeout): the next chunk checks the lease and stops
    fence.allowed = 0
    with pytest.raises(WorkStopped):
        LocalDestination({"path": "feeds"}).deliver(fenced(make_file(b"c" * 3 * MiB), fence))
    assert list((tmp_path / "root" / "feeds").iterdir()) == []


def _destinations(
    tmp_path: Path,
    settings_env: Callable[..., None],
    request: pytest.FixtureRequest,
    kind: str,
) -> tuple[Any, Callable[[str], bool]]:
    """A destination of ``kind`` on its real server, and a reader telling whether a file is there."""
    if kind == "local":
        settings_env(local_root=str(tmp_path / "root"))
        return LocalDestination({"path": "feeds"}), lambda n: (tmp_path / "root" / "feeds" / n).exists()
    if kind == "s3":
        endpoint = request.getfixturevalue("moto_endpoint")
        bucket, reader = request.getfixturevalue("s3_bucket")
        config = {
            "bucket": bucket,
            "path": "feeds",
            "region": "eu-west-1",
            "endpointUrl": endpoint,
            "accessKeyId": "a",
            "secretAccessKey": "b",
        }
        listed = lambda n: reader.list_objects_v2(Bucket=bucket, Prefix=f"feeds/{n}").get("KeyCount", 0) > 0  # noqa: E731
        return S3Destination(config), listed
    if kind == "azure":
        server = request.getfixturevalue("azurite_server")
        container, service = request.getfixturevalue("azure_container")
        config = {"container": container, "path": "feeds", "connectionString": server.connection_string}
        client = service.get_container_client(container)
        return AzureBlobDestination(config), lambda n: client.get_blob_client(f"feeds/{n}").exists()
    server = request.getfixturevalue("sftp_server")
    config = {
        "host": "127.0.0.1",
        "port": server.port,
        "username": server.username,
        "password": server.password,
        "path": f"removed/{tmp_path.name}",
        "hostKeyFingerprint": server.fingerprint,
    }
    return SftpDestination(config), lambda n: (server.root / "removed" / tmp_path.name / n).exists()


@pytest.mark.parametrize("kind", ["local", "s3", "azure", "sftp"])
def test_remove_deletes_the_files_it_names_under_the_fence(
    tmp_path: Path,
    settings_env: Callable[..., None],
    request: pytest.FixtureRequest,
    make_file: Callable[..., Delivery],
    kind: str,
) -> None:
    destination, there = _destinations(tmp_path, settings_env, request, kind)
    for name in ("feed-001.csv", "feed-002.csv", "feed-003.csv"):
        destination.deliver(make_file(b"part", name))
    assert all(there(n) for n in ("feed-001.csv", "feed-002.csv", "feed-003.csv"))
    holds = Fence(allowed=10)
    destination.remove(["feed-002.csv", "feed-009.csv"], holds)  # a name that is not there is fine
    assert (there("feed-001.csv"), there("feed-002.csv"), there("feed-003.csv")) == (True, False, True)
    with pytest.raises(WorkStopped):  # once the lease is lost, nothing is removed
        destination.remove(["feed-003.csv"], Fence())
    assert there("feed-003.csv")
