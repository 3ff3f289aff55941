"""``skuport export``: writes the file, prints a summary, exits non-zero on bad input."""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

from typer.testing import CliRunner

from skuport.cli import app
from skuport.db import session_scope
from tests.exporting.factories import g, make_record

runner = CliRunner()


def test_export_command_writes_file_and_summary(world: None, tmp_path: Path) -> None:
    with session_scope() as s:
        make_record(
            s,
            {
                "sku": g("A-1"),
                "brand": g("Ma Marque"),
                "product-name": [{"scope": {"dim-language": "seg-en"}, "value": "Shirt"}],
            },
        )
        make_record(s, {"sku": g("B-1"), "brand": g("Other")})
    out = tmp_path / "feed.csv.gz"
    result = runner.invoke(
        app,
        [
            "export",
            "--format",
            "csv",
            "--schema",
            "schema-apparel",
            "--scope",
            "dim-language=seg-en",
            "--scope",
            "dim-market=seg-dk",
            "--fields",
            "sku,product-name",
            "--filter",
            "brand=Ma Marque",
            "--compress",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "1 records" in result.output and "records/s" in result.output and "bytes" in result.output
    rows = list(csv.DictReader(io.StringIO(gzip.decompress(out.read_bytes()).decode())))
    assert [(r["sku"], r["product-name"]) for r in rows] == [("A-1", "Shirt")]
    assert [p.name for p in tmp_path.iterdir()] == ["feed.csv.gz"]


def test_export_command_refuses_bad_input(world: None, tmp_path: Path) -> None:
    out = tmp_path / "x.csv"
    result = runner.invoke(
        app, ["export", "--format", "pdf", "--scope", "dim-language=seg-xx", "-o", str(out)]
    )
    assert result.exit_code == 2
    assert "unknown format 'pdf'" in result.output and "seg-xx" in result.output
    result = runner.invoke(app, ["export", "--scope", "dim-language", "-o", str(out)])
    assert result.exit_code == 2 and "dimension=segment" in result.output
    result = runner.invoke(
        app, ["export", "--filter", "price[gte]=abc", "--schema", "schema-apparel", "-o", str(out)]
    )
    assert result.exit_code == 2 and "not a number" in result.output
    assert not out.exists()
