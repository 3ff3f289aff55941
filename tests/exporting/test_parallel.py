"""Worker processes produce the same file as a single-process export."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from skuport.config import get_settings
from skuport.db import session_scope
from skuport.exporting import parallel
from skuport.exporting.pipeline import run_export
from skuport.exporting.spec import ExportCancelled, ExportControl, ExportSpec
from tests.exporting.factories import g, make_record


@pytest.fixture
def many(world: None) -> Iterator[None]:
    with session_scope() as s:
        for i in range(23):
            name = [{"scope": {"dim-language": "seg-en"}, "value": f"N{i}"}]
            values = {"sku": g(f"P-{i}"), "brand": g("B" if i % 3 else "A"), "product-name": name}
            parent = make_record(s, values, categories=["cat-jackets"] if i % 2 else [])
            if i % 4 == 0:
                make_record(s, {"sku": g(f"P-{i}-V")}, parent_id=parent.id)
    yield
    parallel.shutdown()


def _run(tmp_path: Path, name: str, spec: ExportSpec) -> bytes:
    result = run_export(spec, out_dir=tmp_path / name)
    return result.path.read_bytes()


@pytest.mark.parametrize(
    ("fmt", "engine"),
    [("csv", "rows"), ("json", "rows"), ("xlsx", "auto"), ("csv", "auto"), ("json", "auto"), ("xml", "auto")],
)
def test_parallel_output_equals_single_process(
    many: None,
    tmp_path: Path,
    fmt: str,
    engine: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Worker processes write what one process writes: with the row engine, and with polars (auto)."""
    spec = ExportSpec(
        format=fmt,
        schema_id="schema-apparel",
        dimension_scope={"dim-language": "seg-en"},
        includes=("categories",),
        filters={"brand": "B"},
        max_records=13,
    )
    monkeypatch.setattr(get_settings(), "export_engine", engine)
    monkeypatch.setattr(get_settings(), "export_workers", 1)
    single = _run(tmp_path, "one", spec)
    monkeypatch.setattr(get_settings(), "export_engine", "rows")
    assert _run(tmp_path, "rows", spec) == single or fmt == "xlsx"  # polars' bytes are the row engine's
    monkeypatch.setattr(get_settings(), "export_engine", engine)
    monkeypatch.setattr(get_settings(), "export_workers", 2)
    monkeypatch.setattr(parallel, "MIN_PARALLEL_ROWS", 1)
    monkeypatch.setattr(parallel, "CHUNK_ROWS", 4)
    with caplog.at_level("INFO", logger="skuport.exporting.engines"):
        multi = _run(tmp_path, "two", spec)
    polars = fmt != "xlsx" and engine == "auto"
    assert f"processes engine ({'polars encodes' if polars else ''}" in caplog.text
    if fmt != "xlsx":  # zip members carry timestamps
        assert multi == single
    assert len(multi) > 200


def test_parallel_cancel(many: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "export_workers", 2)
    monkeypatch.setattr(parallel, "MIN_PARALLEL_ROWS", 1)
    monkeypatch.setattr(parallel, "CHUNK_ROWS", 5)
    control = ExportControl()
    control.progress = lambda done, total: control.cancel.set() if done else None
    with pytest.raises(ExportCancelled):
        run_export(ExportSpec(schema_id="schema-apparel"), out_dir=tmp_path, control=control)
    assert list(tmp_path.iterdir()) == []


def test_the_processes_engine_is_chosen_where_polars_is_not(
    many: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from skuport.exporting.engines import choose_engine
    from skuport.exporting.prepared import prepare

    monkeypatch.setattr(get_settings(), "export_workers", 2)
    with session_scope() as s:
        for engine_setting, fmt, records, expected in (
            ("auto", "csv", 10**6, "processes"),
            ("auto", "csv", 10, "frame"),
            ("auto", "xlsx", 10**6, "processes"),
            ("rows", "csv", 10**6, "processes"),
            ("rows", "csv", 10, "rows"),
            ("auto", "xlsx", 10, "rows"),
        ):
            monkeypatch.setattr(get_settings(), "export_engine", engine_setting)
            chosen = choose_engine(
                prepare(s, ExportSpec(format=fmt, schema_id="schema-apparel")),
                records=records,
                database_url="sqlite://",
            )
            assert chosen.name == expected, (engine_setting, fmt, records)
