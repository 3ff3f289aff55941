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
