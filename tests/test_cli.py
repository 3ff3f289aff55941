"""The command line: help, token minting, clear failures."""

from __future__ import annotations

import subprocess
import sys

import jwt
from typer.testing import CliRunner

from skuport.cli import app

runner = CliRunner()


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "db", "demo", "token"):
        assert command in result.output


def test_token_create_mints_a_verifiable_token(world: None) -> None:
    result = runner.invoke(app, ["token", "create", "--user", "user-admin", "--ttl", "2h"])
    assert result.exit_code == 0, result.output
    claims = jwt.decode(result.output.strip(), options={"verify_signature": False})
    assert claims["sub"] == "user-admin" and claims["exp"] - claims["iat"] == 7200


def test_token_create_refuses_unknown_user_and_bad_ttl(world: None) -> None:
    unknown = runner.invoke(app, ["token", "create", "--user", "user-ghost"])
    assert unknown.exit_code == 2 and "does not exist" in unknown.output
    bad = runner.invoke(app, ["token", "create", "--user", "user-admin", "--ttl", "forever"])
    assert bad.exit_code == 2 and "invalid duration" in bad.output


def test_options_come_from_environment_variables(world: None) -> None:
    result = runner.invoke(app, ["token", "create"], env={"SKUPORT_TOKEN_USER": "user-viewer"})
    assert result.exit_code == 0, result.output
    assert jwt.decode(result.output.strip(), options={"verify_signature": False})["sub"] == "user-viewer"


def test_module_entry_point_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "skuport.cli", "db", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and "upgrade" in done.stdout


def test_export_options_come_from_environment_variables(world: None, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from skuport.db import session_scope
    from skuport.demo import load_seed_records

    with session_scope() as session:
        load_seed_records(session)
    target = tmp_path / "feed.jsonl"
    result = runner.invoke(
        app,
        ["export"],
        env={
            "SKUPORT_EXPORT_OUTPUT": str(target),
            "SKUPORT_EXPORT_FORMAT": "jsonl",
            "SKUPORT_EXPORT_SCHEMA": "schema-apparel",
            "SKUPORT_EXPORT_SCOPE": "dim-language=seg-da",
            "SKUPORT_EXPORT_FIELDS": "id,sku,product-name",
        },
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert {row["id"]: row["product-name"] for row in rows} == {
        "ent-xK9mP2vL": "Kyst Vindjakke",
        "ent-coastal-wb": "Kyst Vindjakke",
    }


def _skuport(*args: str, data_dir: str, umask: int | None = None) -> subprocess.CompletedProcess[str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("SKUPORT_")}
    env["SKUPORT_DATA_DIR"] = data_dir

    def set_umask() -> None:
        if umask is not None:
            os.umask(umask)

    return subprocess.run(
        [sys.executable, "-m", "skuport.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=set_umask,
    )


def test_a_fresh_data_dir_token_db_upgrade_and_export_permissions(tmp_path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "data"
    # no database: token create says so and creates nothing
    refused = _skuport("token", "create", "--user", "user-admin", data_dir=str(data))
    assert refused.returncode == 1 and "there is no skuport database" in refused.stderr
    assert not data.exists()
    # db upgrade says it created the database, then that it is up to date; no migration plumbing
    first = _skuport("db", "upgrade", data_dir=str(data))
    assert first.returncode == 0 and first.stdout.startswith("created the database"), first.stderr
    assert "Context impl" not in first.stderr + first.stdout
    again = _skuport("db", "upgrade", data_dir=str(data))
    assert again.stdout.startswith("database is up to date")
    # skuport export -o honours the umask
    assert _skuport("demo", data_dir=str(data)).returncode == 0
    out = tmp_path / "feed.csv"
    done = _skuport("export", "--format", "csv", "-o", str(out), data_dir=str(data), umask=0o027)
    assert done.returncode == 0, done.stderr
    assert out.stat().st_mode & 0o777 == 0o640
    done = _skuport("export", "--format", "csv", "-o", str(out), data_dir=str(data), umask=0o022)
    assert done.returncode == 0, done.stderr
    assert out.stat().st_mode & 0o777 == 0o644


def test_export_takes_a_csv_dialect_and_names_a_bad_one(world: None, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from skuport.db import session_scope
    from skuport.demo import load_seed_records

    with session_scope() as session:
        load_seed_records(session)
    target = tmp_path / "feed.csv"
    common = ["export", "-o", str(target), "--schema", "schema-apparel", "--scope", "dim-market=seg-dk"]
    dialect = [
        "--csv",
        "delimiter=tab",
        "--csv",
        "decimalSeparator=,",
        "--csv",
        "bom=true",
        "--csv",
        "lineTerminator=lf",
    ]
    result = runner.invoke(app, [*common, "--fields", "sku,price", *dialect])
    assert result.exit_code == 0, result.output
    data = target.read_bytes()
    assert data.startswith("\ufeffsku\tprice\n".encode())
    assert b"CW-001\t129,99\n" in data

    result = runner.invoke(app, [*common, "--csv", "delimiter=,", "--csv", "decimalSeparator=,"])
    assert result.exit_code == 2
    assert "decimalSeparator and delimiter are both ','" in result.output
    result = runner.invoke(app, [*common, "--format", "xlsx", "--csv", "bom=true"])
    assert result.exit_code == 2 and "csv sets a csv file's dialect" in result.output


def test_export_takes_columns_and_a_column_per_segment(world: None, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from skuport.db import session_scope
    from skuport.demo import load_seed_records

    with session_scope() as session:
        load_seed_records(session)
    target = tmp_path / "feed.csv"
    common = ["export", "-o", str(target), "--schema", "schema-apparel"]
    columns = [
        {"header": "Title (da)", "attribute": "product-name", "scope": {"dim-language": "seg-da"}},
        {"header": "Price", "attribute": "price"},
        {"header": "feed", "value": "nightly"},
    ]
    spec = tmp_path / "columns.json"
    spec.write_text(json.dumps(columns))
    result = runner.invoke(app, [*common, "--columns", f"@{spec}", "--scope", "dim-market=seg-dk"])
    assert result.exit_code == 0, result.output
    lines = target.read_text().splitlines()
    assert lines[0] == "Title (da),Price,feed" and "Kyst Vindjakke,969,nightly" in lines

    result = runner.invoke(
        app, [*common, "--fields", "sku,product-name", "--scope", "dim-language=seg-da,seg-en"]
    )
    assert result.exit_code == 0, result.output
    lines = target.read_text().splitlines()
    assert lines[0] == "sku,product-name-seg-da,product-name-seg-en"
    assert "CW-001,Kyst Vindjakke,Coastal Windbreaker" in lines

    result = runner.invoke(app, [*common, "--columns", '[{"header": "x", "attribute": "nope"}]'])
    assert result.exit_code == 2 and "'nope' is not an attribute" in result.output
    result = runner.invoke(app, [*common, "--columns", "[{"])
    assert result.exit_code == 2 and "--columns is not JSON" in result.output


def test_export_writes_option_labels_with_value_labels(world: None, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from skuport.db import session_scope
    from skuport.records import service

    with session_scope() as session:
        service.create_record(
            session,
            schema_id="schema-apparel",
            values={"sku": [{"scope": {}, "value": "LBL-1"}], "color": [{"scope": {}, "value": "Red"}]},
            user_id="user-admin",
        )
    target = tmp_path / "feed.csv"
    common = ["export", "-o", str(target), "--schema", "schema-apparel", "--fields", "sku,color"]
    result = runner.invoke(app, [*common, "--scope", "dim-language=seg-de", "--value-labels"])
    assert result.exit_code == 0, result.output
    assert target.read_text().splitlines() == ["sku,color", "LBL-1,Rot"]
    result = runner.invoke(app, [*common, "--scope", "dim-language=seg-de"])
    assert target.read_text().splitlines() == ["sku,color", "LBL-1,Red"]


def test_export_splits_into_parts_with_a_manifest(world: None, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from skuport.db import session_scope
    from skuport.exporting.manifest import read_manifest
    from skuport.records import service

    with session_scope() as session:
        for i in range(5):
            service.create_record(
                session,
                schema_id="schema-apparel",
                values={"sku": [{"scope": {}, "value": f"PART-{i}"}]},
                user_id="user-admin",
            )
    target = tmp_path / "feed.csv"
    result = runner.invoke(
        app,
        [
            "export",
            "-o",
            str(target),
            "--schema",
            "schema-apparel",
            "--fields",
            "sku",
            "--manifest",
            "--max-records-per-file",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "4 files" in result.output and "feed.manifest.json" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "feed-001.csv",
        "feed-002.csv",
        "feed-003.csv",
        "feed.manifest.json",
    ]
    rows = [line for i in (1, 2, 3) for line in (tmp_path / f"feed-00{i}.csv").read_text().splitlines()[1:]]
    assert rows == [f"PART-{i}" for i in range(5)]
    document = read_manifest((tmp_path / "feed.manifest.json").read_bytes(), tmp_path)
    assert [f["recordCount"] for f in document["files"]] == [2, 2, 1]
    assert document["selection"]["maxRecordsPerFile"] == 2 and "runId" not in document
    bad = runner.invoke(app, ["export", "-o", str(target), "--max-records-per-file", "0"])
    assert bad.exit_code == 2 and "max_records_per_file" in bad.output
