"""Local destination: a folder under SKUPORT_LOCAL_ROOT, written atomically, never escaping the root."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from skuport.exporting.destinations import get_destination, validate_config
from skuport.exporting.destinations.base import Delivery, DeliveryError, DestinationConfigError
from skuport.exporting.destinations.local import LocalDestination, local_root

Make = Callable[..., Delivery]


@pytest.fixture
def root(tmp_path: Path, settings_env: Callable[..., None]) -> Path:
    """A fresh local root for this test."""
    folder = tmp_path / "local-root"
    folder.mkdir()
    settings_env(local_root=str(folder))
    return folder


def test_default_root_is_exports_in_the_data_dir(tmp_path: Path, settings_env: Callable[..., None]) -> None:
    settings_env(data_dir=str(tmp_path / "data"))
    assert local_root() == (tmp_path / "data" / "exports").resolve()


def test_delivers_into_the_configured_folder(root: Path, make_file: Make) -> None:
    path = get_destination("local", {"path": "feeds/products"}).deliver(make_file(b"sku\nA-1\n", "p.csv"))
    target = root / "feeds" / "products" / "p.csv"
    assert path == target.as_uri()
    assert target.read_bytes() == b"sku\nA-1\n"
    assert sorted(os.listdir(target.parent)) == ["p.csv"], "no temporary file left behind"


def test_redelivery_replaces_the_file(root: Path, make_file: Make) -> None:
    dest = LocalDestination({})
    dest.deliver(make_file(b"old", "feed.csv"))
    inode_reader = (root / "feed.csv").open("rb")  # a reader holding the old file keeps reading it whole
    dest.deliver(make_file(b"new", "feed.csv"))
    assert inode_reader.read() == b"old"
    inode_reader.close()
    assert (root / "feed.csv").read_bytes() == b"new"


def test_failed_write_leaves_the_old_file_and_no_temp(root: Path, make_file: Make) -> None:
    dest = LocalDestination({"path": "out"})
    dest.deliver(make_file(b"old", "feed.csv"))
    missing = make_file(b"x", "feed.csv")
    missing.path.unlink()  # the source vanishes mid-delivery
    with pytest.raises(DeliveryError, match=r"Local write failed: No such file or directory"):
        dest.deliver(missing)
    assert sorted(os.listdir(root / "out")) == ["feed.csv"]
    assert (root / "out" / "feed.csv").read_bytes() == b"old"


def test_symlinked_folder_out_of_the_root_is_refused(root: Path, tmp_path: Path, make_file: Make) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "escape").symlink_to(outside)
    with pytest.raises(DeliveryError, match="resolves outside the local root"):
        LocalDestination({"path": "escape"}).deliver(make_file(b"x", "p.csv"))
    (root / "target-link.csv").symlink_to(outside / "victim.csv")
    with pytest.raises(DeliveryError, match="resolves outside the local root"):
        LocalDestination({}).deliver(make_file(b"x", "target-link.csv"))
    assert list(outside.iterdir()) == []


def test_file_names_cannot_climb_out(root: Path, make_file: Make) -> None:
    for name in ("../evil.csv", "a/../../evil.csv", "/etc/evil.csv"):
        with pytest.raises(DeliveryError):
            LocalDestination({}).deliver(make_file(b"x", name))
    assert not (root.parent / "evil.csv").exists()


def test_unwritable_folder_says_what_to_check(root: Path, make_file: Make) -> None:
    (root / "blocked").write_text("a file where a folder should be")
    with pytest.raises(DeliveryError, match=r"Local write failed: .*Check free disk space"):
        LocalDestination({"path": "blocked/sub"}).deliver(make_file(b"x"))
    with pytest.raises(DeliveryError, match="Local write test failed"):
        LocalDestination({"path": "blocked/sub"}).test_connection()
    LocalDestination({"path": "fine"}).test_connection()
    assert (root / "fine").is_dir() and list((root / "fine").iterdir()) == []


@pytest.mark.parametrize("path", ["../up", "/abs", "a\\b", "a/../../b", "x\x00y"])
def test_config_path_must_stay_relative(path: str) -> None:
    with pytest.raises(DestinationConfigError) as info:
        validate_config("local", {"path": path})
    assert info.value.status_code == 422
    assert info.value.details[0]["field"] == "destinationConfig.path"
