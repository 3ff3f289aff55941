"""Split exports: parts that concatenate to the unsplit export, on every engine, and their names."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
from pathlib import Path
from typing import Any

import openpyxl
import orjson
import pytest

from skuport.config import get_settings
from skuport.db import session_scope
from skuport.errors import ValidationFailed
from skuport.exporting import parallel
from skuport.exporting.formats import FORMATS
from skuport.exporting.formats.xlsx import XlsxFormat
from skuport.exporting.manifest import file_names, manifest_name, part_name
from skuport.exporting.pipeline import run_export, validate_spec
from skuport.exporting.spec import ExportFile, ExportSpec
from tests.exporting.factories import g, make_record, make_tombstone


@pytest.fixture
def products(world: None) -> None:
    with session_scope() as s:
        for i in range(23):
            make_record(s, {"sku": g(f"S-{i:02d}"), "product-name": g(f"Name, {i}")})


def csv_rows(file: ExportFile, *, gz: bool = False) -> list[list[str]]:
    data = file.path.read_bytes()
    return list(csv.reader(io.StringIO((gzip.decompress(data) if gz else data).decode(), newline="")))


@pytest.mark.parametrize("engine", ["auto", "rows", "processes"])
def test_csv_parts_concatenate_to_the_unsplit_export(
    products: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: str
) -> None:
    if engine == "processes":  # worker processes, in chunks that do not line up with the parts
        monkeypatch.setattr(get_settings(), "export_workers", 2)
        monkeypatch.setattr(parallel, "MIN_PARALLEL_ROWS", 1)
        monkeypatch.setattr(parallel, "CHUNK_ROWS", 3)
    else:
        monkeypatch.setattr(get_settings(), "export_engine", engine)
    spec = ExportSpec(format="csv", schema_id="schema-apparel", compress=True, fields=("sku", "product-name"))
    whole = run_export(spec, out_dir=tmp_path)
    parts = run_export(ExportSpec(**{**spec.__dict__, "max_records_per_file": 5}), out_dir=tmp_path)
    assert not whole.split and parts.split
    assert [f.row_count for f in parts.files] == [5, 5, 5, 5, 3]
    header, *rows = csv_rows(whole.only, gz=True)
    joined: list[list[str]] = []
    for file in parts.files:
        part_header, *part_rows = csv_rows(file, gz=True)
        assert part_header == header  # every part is a whole file
        joined.extend(part_rows)
    assert joined == rows and len(rows) == 23
    assert parts.record_count == 23 and parts.file_size == sum(f.file_size for f in parts.files)
    with pytest.raises(ValueError):
        _ = parts.path  # a split export has no one path
    parts.discard()
    assert not any(f.path.exists() for f in parts.files)


def test_jsonl_parts_and_a_delta_s_tombstones_fill_the_last_parts(products: None, tmp_path: Path) -> None:
    since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    with session_scope() as s:
        for i in range(4):
            make_tombstone(s, f"gone-{i}", deleted_at=dt.datetime.now(dt.UTC))
    spec = ExportSpec(format="jsonl", schema_id="schema-apparel", changed_since=since)
    whole = run_export(spec, out_dir=tmp_path)
    parts = run_export(ExportSpec(**{**spec.__dict__, "max_records_per_file": 10}), out_dir=tmp_path)
    assert [f.row_count for f in parts.files] == [10, 10, 7]  # 23 records, then 4 tombstones
    lines = [orjson.loads(x) for f in parts.files for x in f.path.read_bytes().splitlines()]
    assert lines == [orjson.loads(x) for x in whole.only.path.read_bytes().splitlines()]
    assert [x["id"] for x in lines if x.get("_deleted")] == [f"gone-{i}" for i in range(4)]
    assert parts.tombstone_count == 4


def test_an_empty_split_export_is_one_part_with_its_header(world: None, tmp_path: Path) -> None:
    parts = run_export(
        ExportSpec(format="csv", schema_id="schema-apparel", fields=("sku",), max_records_per_file=3),
        out_dir=tmp_path,
    )
    assert parts.split and [f.row_count for f in parts.files] == [0]
    assert csv_rows(parts.files[0]) == [["sku"]]


def test_xlsx_past_its_sheet_limit_splits_where_it_may(
    products: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = XlsxFormat()
    small.max_rows = 10
    monkeypatch.setitem(FORMATS, "xlsx", small)
    spec = ExportSpec(format="xlsx", schema_id="schema-apparel", fields=("sku",))
    with pytest.raises(ValidationFailed) as refused:  # a one-off export is one file
        run_export(spec, out_dir=tmp_path, may_split=False)
    assert refused.value.code == "too_many_rows"
    with session_scope() as s:
        validate_spec(s, spec, may_split=True)
    parts = run_export(spec, out_dir=tmp_path)
    assert parts.split and [f.row_count for f in parts.files] == [10, 10, 3]
    skus = []
    for file in parts.files:
        sheet = openpyxl.load_workbook(file.path, read_only=True).active
        header, *rows = list(sheet.iter_rows(values_only=True))
        assert header == ("sku",)
        skus.extend(r[0] for r in rows)
    assert skus == [f"S-{i:02d}" for i in range(23)]
    # a smaller maxRecordsPerFile wins; a larger one is held to the sheet
    assert [
        f.row_count
        for f in run_export(
            ExportSpec(**{**spec.__dict__, "max_records_per_file": 50}), out_dir=tmp_path
        ).files
    ] == [10, 10, 3]


@pytest.mark.parametrize(
    ("filename", "extension", "first", "manifest"),
    [
        ("products-2026-03-08.csv.gz", "csv.gz", "products-2026-03-08-001.csv.gz", "products-2026-03-08"),
        ("feeds/de/products.xlsx", "xlsx", "feeds/de/products-001.xlsx", "feeds/de/products"),
        ("feed.txt", "csv", "feed-001.txt", "feed"),
        ("v1.2/feed", "csv", "v1.2/feed-001", "v1.2/feed"),
    ],
)
def test_part_and_manifest_names(filename: str, extension: str, first: str, manifest: str) -> None:
    assert part_name(filename, index=1, count=7, extension=extension) == first
    assert manifest_name(filename, extension=extension) == manifest + ".manifest.json"
    assert part_name("a.csv", index=12, count=1200, extension="csv") == "a-0012.csv"


def test_file_names_of_an_unsplit_export_is_the_name_itself(tmp_path: Path) -> None:
    from skuport.exporting.spec import ExportResult

    one = ExportFile(path=tmp_path / "x", row_count=1, file_size=1, sha256="0")
    result: Any = ExportResult(files=(one,), record_count=1, content_type="text/csv", extension="csv")
    assert file_names("feed.csv", result) == ["feed.csv"]
    result.split = True
    assert file_names("feed.csv", result) == ["feed-001.csv"]
