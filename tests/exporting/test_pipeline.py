"""The export pipeline end to end on the test database: selection, flattening, delta, errors, cancellation."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import io
from pathlib import Path
from typing import Any

import pytest

from skuport.catalog.models import Catalog, Category
from skuport.db import session_scope
from skuport.errors import SkuportError, ValidationFailed
from skuport.exporting import pipeline
from skuport.exporting import select as selection
from skuport.exporting.formats import FORMATS
from skuport.exporting.formats.xlsx import XlsxFormat
from skuport.exporting.pipeline import count_matching, run_export, validate_spec
from skuport.exporting.spec import ExportCancelled, ExportControl, ExportResult, ExportSpec
from tests.exporting.factories import add_attribute, g, make_record, make_tombstone

EN_DK = {"dim-language": "seg-en", "dim-market": "seg-dk"}


def read_rows(result: ExportResult) -> list[dict[str, str]]:
    """Rows of a csv export (gzip or not), read by the csv module."""
    data = result.path.read_bytes()
    if result.content_encoding == "gzip":
        data = gzip.decompress(data)
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))


def export(tmp_path: Path, **options: Any) -> list[dict[str, str]]:
    """Run a csv export and read it back."""
    options.setdefault("schema_id", "schema-apparel")
    return read_rows(run_export(ExportSpec(format="csv", **options), out_dir=tmp_path))


@pytest.fixture
def jacket(world: None) -> str:
    """One product with scoped names, prices and stock; returns its id."""
    with session_scope() as s:
        add_attribute(s, "promo", "text", ["dim-language", "dim-market"])
        make_record(
            s,
            {
                "product-name": [
                    {"scope": {}, "value": "Jacket"},
                    {"scope": {"dim-language": "seg-da"}, "value": "Jakke"},
                    {"scope": {"dim-language": "seg-en"}, "value": "Rain jacket"},
                ],
                "sku": g("RJ-1"),
                "price": [{"scope": {}, "value": 100}, {"scope": {"dim-market": "seg-dk"}, "value": 750.5}],
                "in-stock": [{"scope": {"dim-market": "seg-de"}, "value": True}],
                "promo": [
                    {"scope": {}, "value": "promo-global"},
                    {"scope": {"dim-language": "seg-en"}, "value": "promo-en"},
                    {"scope": {"dim-market": "seg-dk"}, "value": "promo-dk"},
                    {"scope": {"dim-language": "seg-en", "dim-market": "seg-dk"}, "value": "promo-en-dk"},
                ],
            },
            record_id="ent-jacket",
        )
    return "ent-jacket"


def test_scope_resolution_exact_partial_fallback_and_foreign_dimension(jacket: str, tmp_path: Path) -> None:
    # given a product whose values sit in different scopes
    # when exported for English in Denmark
    (row,) = export(tmp_path, dimension_scope=EN_DK)
    # then every attribute holds its most specific applicable value
    assert row["promo"] == "promo-en-dk"  # exact (both dimensions)
    assert row["product-name"] == "Rain jacket"  # partial: the attribute only has dim-language
    assert row["price"] == "750.5"  # market value over the global one
    assert row["sku"] == "RJ-1"  # attribute without dimensions: its global value
    assert row["in-stock"] == ""  # only a seg-de value: nothing applies to seg-dk, no global

    (row,) = export(tmp_path, dimension_scope={"dim-language": "seg-de", "dim-market": "seg-dk"})
    assert row["product-name"] == "Jacket"  # fallback to global
    assert row["promo"] == "promo-dk"  # partial match on the market
    (row,) = export(tmp_path, dimension_scope={"dim-language": "seg-en"})
    assert row["promo"] == "promo-en"
    assert row["price"] == "100"  # market values never apply without a market in the scope
    (row,) = export(tmp_path, dimension_scope={"dim-market": "seg-de", "dim-language": "seg-en"})
    assert row["in-stock"] == "true"
    assert row["promo"] == "promo-en"


def test_without_scope_one_column_per_attribute_and_scope(jacket: str, tmp_path: Path) -> None:
    result = run_export(ExportSpec(schema_id="schema-apparel"), out_dir=tmp_path)
    (row,) = read_rows(result)
    headers = list(row)
    assert headers[:6] == ["id", "parentId", "schemaId", "lifecycleStateId", "createdAt", "updatedAt"]
    assert headers[6:10] == [
        "product-name",
        "product-name[dim-language=seg-en]",
        "product-name[dim-language=seg-da]",
        "product-name[dim-language=seg-de]",
    ]
    assert row["product-name"] == "Jacket"
    assert row["product-name[dim-language=seg-da]"] == "Jakke"
    assert row["price"] == "100" and row["price[dim-market=seg-dk]"] == "750.5"
    assert row["price[dim-market=seg-de]"] == ""
    assert row["promo[dim-language=seg-en&dim-market=seg-dk]"] == "promo-en-dk"
    assert row["promo[dim-market=seg-dk]"] == "promo-dk"
    assert "promo[dim-language=seg-da&dim-market=seg-de]" in headers
    assert row["id"] == "ent-jacket" and row["createdAt"].endswith("Z") and "T" in row["createdAt"]


def test_fields_order_header_language_and_dry_data(jacket: str, tmp_path: Path) -> None:
    # fields names the file's columns: exactly those, in that order, system fields included
    (row,) = export(tmp_path, dimension_scope=EN_DK, fields=("sku", "price", "product-name"))
    assert row == {"sku": "RJ-1", "price": "750.5", "product-name": "Rain jacket"}
    (row,) = export(tmp_path, dimension_scope=EN_DK, fields=("sku", "id", "price", "categories", "updatedAt"))
    assert list(row) == ["sku", "id", "price", "categories", "updatedAt"]
    assert row["id"] == "ent-jacket" and row["updatedAt"].endswith("Z")
    # without a scope an attribute keeps its columns together, where fields puts it
    (row,) = export(tmp_path, fields=("price", "sku"))
    assert list(row) == ["price", "price[dim-market=seg-dk]", "price[dim-market=seg-de]", "sku"]
    (row,) = export(
        tmp_path,
        dimension_scope={"dim-language": "seg-da"},
        fields=("sku", "product-name"),
        header_language="seg-da",
        dry_data=True,
    )
    assert row == {"Varenummer": "RJ-1", "Produktnavn": "Jakke"}
    # without fields, every record field leads as before
    (row,) = export(tmp_path, dimension_scope=EN_DK)
    assert list(row)[:6] == ["id", "parentId", "schemaId", "lifecycleStateId", "createdAt", "updatedAt"]
    with pytest.raises(ValidationFailed) as err:
        export(tmp_path, fields=("sku", "nope"))
    assert "'nope' is neither an attribute" in err.value.message and "lifecycleStateId" in err.value.message


def test_filters_states_and_max_records(world: None, tmp_path: Path) -> None:
    with session_scope() as s:
        make_record(s, {"sku": g("A-1"), "brand": g("Ma Marque"), "price": g(50)}, record_id="ent-a")
        make_record(
            s,
            {"sku": g("B-1"), "brand": g("Other"), "price": g(150)},
            record_id="ent-b",
            state="state-published",
        )
        make_record(s, {"sku": g("C-1"), "brand": g("Ma Marque"), "price": g(250)}, record_id="ent-c")
    ids = lambda rows: [r["id"] for r in rows]  # noqa: E731
    assert ids(export(tmp_path, filters={"brand": "Ma Marque"})) == ["ent-a", "ent-c"]
    assert ids(export(tmp_path, filters={"price": {"gte": 100, "lt": 200}})) == ["ent-b"]
    assert ids(export(tmp_path, filters={"sku_eq": "C-1"})) == ["ent-c"]
    assert ids(export(tmp_path, lifecycle_state_ids=("state-published",))) == ["ent-b"]
    assert ids(export(tmp_path, max_records=2)) == ["ent-a", "ent-b"]
    with session_scope() as s:
        assert count_matching(s, ExportSpec(schema_id="schema-apparel", filters={"brand": "Ma Marque"})) == 2
    with pytest.raises(ValidationFailed) as err:
        export(tmp_path / "bad", filters={"nope": 1})
    assert err.value.status_code == 422 and "nope" in err.value.message
    assert not (tmp_path / "bad").exists()


def test_catalog_subtree_and_categories_include(world: None, tmp_path: Path) -> None:
    with session_scope() as s:
        s.add(Catalog(id="catalog-print", name="Print"))
        s.add(Category(id="cat-print", catalog_id="catalog-print", name="Print"))
        s.flush()
        make_record(s, {"sku": g("DEEP-1")}, record_id="ent-deep", categories=["cat-jackets", "cat-knitwear"])
        make_record(s, {"sku": g("TOP-1")}, record_id="ent-top", categories=["cat-apparel"])
        make_record(s, {"sku": g("NONE-1")}, record_id="ent-none")
        make_record(s, {"sku": g("PRINT-1")}, record_id="ent-print", categories=["cat-print"])
    rows = export(tmp_path, catalog_id="catalog-webshop", includes=("categories",))
    assert [r["id"] for r in rows] == ["ent-deep", "ent-top"]
    assert rows[0]["categories"] == "cat-jackets|cat-knitwear"
    assert [r["id"] for r in export(tmp_path, catalog_id="catalog-print")] == ["ent-print"]


def test_variants_included_or_not(world: None, tmp_path: Path) -> None:
    with session_scope() as s:
        make_record(s, {"sku": g("P-1")}, record_id="ent-parent")
        make_record(s, {"sku": g("P-1-S"), "sizes": g(["S"])}, record_id="ent-child", parent_id="ent-parent")
    rows = export(tmp_path)
    assert [(r["id"], r["parentId"]) for r in rows] == [("ent-parent", ""), ("ent-child", "ent-parent")]
    assert [r["id"] for r in export(tmp_path, include_variants=False)] == ["ent-parent"]


def test_delta_with_tombstones(world: None, tmp_path: Path) -> None:
    since = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with session_scope() as s:
        make_record(s, {"sku": g("OLD-1")}, record_id="ent-old", updated_at=since - dt.timedelta(days=1))
        make_record(s, {"sku": g("NEW-1")}, record_id="ent-new", updated_at=since + dt.timedelta(days=1))
        make_tombstone(s, "ent-gone", deleted_at=since + dt.timedelta(hours=1))
        make_tombstone(s, "ent-long-gone", deleted_at=since - dt.timedelta(hours=1))
        make_tombstone(s, "ent-other", deleted_at=since + dt.timedelta(hours=1), schema_id="schema-other")
    result = run_export(
        ExportSpec(schema_id="schema-apparel", changed_since=since, compress=True), out_dir=tmp_path
    )
    rows = read_rows(result)
    assert [(r["id"], r["_deleted"], r["sku"]) for r in rows] == [
        ("ent-new", "false", "NEW-1"),
        ("ent-gone", "true", ""),
    ]
    assert rows[1]["schemaId"] == "schema-apparel" and rows[1]["createdAt"] == ""
    assert result.record_count == 2 and result.tombstone_count == 1


def test_timestamps_are_cut_to_milliseconds_as_the_api_writes_them(world: None, tmp_path: Path) -> None:
    from skuport.api import iso_z

    when = dt.datetime(2026, 3, 8, 10, 30, 16, 297846, tzinfo=dt.UTC)
    with session_scope() as s:
        make_record(s, {"sku": g("T-1")}, record_id="ent-t", updated_at=when)
    result = run_export(ExportSpec(format="csv", schema_id="schema-apparel"), out_dir=tmp_path)
    (row,) = read_rows(result)
    assert row["updatedAt"] == row["createdAt"] == iso_z(when) == "2026-03-08T10:30:16.297Z"


def test_result_describes_the_file(jacket: str, tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    result = run_export(
        ExportSpec(schema_id="schema-apparel", compress=True),
        out_dir=tmp_path,
        control=ExportControl(progress=lambda d, t: seen.append((d, t))),
    )
    data = result.path.read_bytes()
    assert result.path.parent == tmp_path and result.path.name.endswith(".csv.gz")
    assert result.extension == "csv.gz" and result.content_encoding == "gzip"
    assert result.content_type.startswith("text/csv")
    assert result.file_size == len(data) and result.sha256 == hashlib.sha256(data).hexdigest()
    assert gzip.decompress(data).startswith(b"id,parentId,")
    assert seen[0] == (0, 1) and seen[-1] == (1, 1)


def test_empty_result_still_writes_a_valid_file(world: None, tmp_path: Path) -> None:
    result = run_export(ExportSpec(schema_id="schema-apparel"), out_dir=tmp_path)
    assert result.record_count == 0
    assert result.path.read_bytes().startswith(b"id,parentId,schemaId")
    assert read_rows(result) == []


@pytest.mark.parametrize(
    ("options", "field", "words"),
    [
        ({"format": "pdf"}, "format", "unknown format 'pdf'"),
        ({"schema_id": "schema-nope"}, "schemaId", "schema 'schema-nope' does not exist"),
        ({"fields": ("sku", "nope")}, "fields", "'nope' is neither an attribute"),
        ({"fields": ("sku", "sku")}, "fields", "more than once"),
        ({"dimension_scope": {"dim-planet": "seg-mars"}}, "dimensionScope", "dimension 'dim-planet'"),
        ({"dimension_scope": {"dim-market": "seg-en"}}, "dimensionScope", "'seg-en' is not a segment"),
        ({"catalog_id": "catalog-nope"}, "catalogId", "catalog 'catalog-nope'"),
        ({"lifecycle_state_ids": ("state-nope",)}, "lifecycleStateIds", "state-nope"),
        ({"includes": ("bogus",)}, "includes", "cannot include 'bogus'"),
        ({"header_language": "seg-xx"}, "headerLanguage", "seg-xx"),
        ({"changed_since": dt.datetime(2026, 1, 1)}, "changedSince", "time zone"),
    ],
)
def test_bad_specs_are_refused_before_writing(
    world: None, tmp_path: Path, options: dict[str, Any], field: str, words: str
) -> None:
    spec = ExportSpec(**{"schema_id": "schema-apparel", **options})
    with pytest.raises(ValidationFailed) as err:
        run_export(spec, out_dir=tmp_path)
    assert err.value.status_code == 422
    assert words in err.value.message
    assert any(d["field"] == field for d in err.value.details)
    assert list(tmp_path.iterdir()) == []
    with session_scope() as s, pytest.raises(ValidationFailed):
        validate_spec(s, spec)


def test_xlsx_over_the_row_limit_is_refused(
    world: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = XlsxFormat()
    small.max_rows = 2
    monkeypatch.setitem(FORMATS, "xlsx", small)
    with session_scope() as s:
        for i in range(3):
            make_record(s, {"sku": g(f"X-{i}")})
    spec = ExportSpec(format="xlsx", schema_id="schema-apparel")
    with pytest.raises(ValidationFailed) as err:  # one file (a one-off export's download)
        run_export(spec, out_dir=tmp_path, may_split=False)
    assert err.value.code == "too_many_rows" and "at most 2" in err.value.message
    assert list(tmp_path.iterdir()) == []
    with session_scope() as s, pytest.raises(ValidationFailed):
        validate_spec(s, spec)
    assert (
        run_export(
            ExportSpec(format="xlsx", schema_id="schema-apparel", max_records=2), out_dir=tmp_path
        ).record_count
        == 2
    )


def test_cancel_stops_and_removes_the_file(
    world: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(selection, "BATCH_SIZE", 2)
    monkeypatch.setattr(selection, "COLUMNAR_BATCH_SIZE", 2)
    with session_scope() as s:
        for i in range(7):
            make_record(s, {"sku": g(f"C-{i}")})
    control = ExportControl()
    seen: list[int] = []

    def progress(done: int, total: int) -> None:
        seen.append(done)
        if done >= 2:
            control.cancel.set()

    control.progress = progress
    with pytest.raises(ExportCancelled) as err:
        run_export(ExportSpec(schema_id="schema-apparel", compress=True), out_dir=tmp_path, control=control)
    assert isinstance(err.value, SkuportError) and "2 of 7" in err.value.message
    assert seen == [0, 2]
    assert list(tmp_path.iterdir()) == []


def test_batches_follow_pk_order_across_batch_boundaries(
    world: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(selection, "BATCH_SIZE", 3)
    monkeypatch.setattr(selection, "COLUMNAR_BATCH_SIZE", 3)
    with session_scope() as s:
        made = [make_record(s, {"sku": g(f"K-{i}")}).id for i in range(8)]
    assert [r["id"] for r in export(tmp_path)] == made
    assert [r["id"] for r in export(tmp_path, max_records=5)] == made[:5]


def test_headers_for_lists_the_plan(jacket: str) -> None:
    with session_scope() as s:
        headers = pipeline.headers_for(
            s,
            ExportSpec(
                schema_id="schema-apparel", dimension_scope=EN_DK, fields=("sku",), includes=("categories",)
            ),
        )
    assert headers[-2:] == ["sku", "categories"]


def test_completeness_include_matches_the_records_api(world: None, tmp_path: Path) -> None:
    from skuport.records.service import completeness

    with session_scope() as s:
        make_record(s, {"sku": g("S-1")}, record_id="ent-sparse")
        make_record(
            s,
            {
                "sku": g("F-1"),
                "product-name": [
                    {"scope": {"dim-language": seg}, "value": "n"} for seg in ("seg-en", "seg-da", "seg-de")
                ],
                "price": [{"scope": {"dim-market": m}, "value": 1} for m in ("seg-dk", "seg-de")],
            },
            record_id="ent-full",
        )
    rows = export(
        tmp_path, includes=("completeness", "categories"), dimension_scope={"dim-language": "seg-en"}
    )
    got = {r["id"]: int(r["completeness"]) for r in rows}
    with session_scope() as s:
        expected = {rid: completeness(s, record_id=rid)["percentage"] for rid in got}
    assert got == expected
    assert got["ent-full"] > got["ent-sparse"]
    assert list(rows[0])[-2:] == ["categories", "completeness"]
    unscoped = export(tmp_path, includes=("completeness",))
    assert {r["id"]: int(r["completeness"]) for r in unscoped} == expected
