"""The format registry is the one list of formats: a format registered there (a throw-away one here) is in
the API's enum, the OpenAPI document, the CLI's help and the download media types, with nothing else
to edit."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

PROGRAM = textwrap.dedent("""
    import json
    from skuport.exporting import formats
    from skuport.exporting.formats.csv import CsvFormat

    class Tsv(CsvFormat):  # the one new file
        name = "tsv"
        content_type = "text/tab-separated-values"
        extension = "tsv"

    formats.FORMATS["tsv"] = Tsv()  # the one registry line

    from typer.testing import CliRunner
    from skuport.app import create_app
    from skuport.cli import app as cli
    from skuport.exporting.selection import ExportFormat
    from skuport.exports.router import FILE_TYPES

    document = create_app().openapi()
    schemas = document["components"]["schemas"]
    download = document["paths"]["/api/v1/exports/{export_id}/download"]["get"]["responses"]["200"]
    print(json.dumps({
        "enum": [f.value for f in ExportFormat],
        "openapi": schemas["ExportFormat"]["enum"],
        "help": CliRunner().invoke(cli, ["export", "--help"], terminal_width=200).output,
        "media": FILE_TYPES,
        "download": list(download["content"]),
    }))
""")


def test_a_registered_format_appears_everywhere_formats_are_listed() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=120, check=True
    )
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["enum"] == ["csv", "json", "jsonl", "xml", "xlsx", "tsv"]
    assert found["openapi"] == found["enum"]
    assert "xlsx, tsv." in found["help"]
    assert "text/tab-separated-values" in found["media"] and "application/gzip" in found["media"]
    assert "text/tab-separated-values" in found["download"]
