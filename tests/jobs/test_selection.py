"""Export jobs take the one selection one-off exports take: lifecycle states, includes, header language
and dry data are stored, shown, replaced by PUT, checked like an export's, and honoured by the run."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.jobs.test_ownership import ended, env, make, records, run_now  # noqa: F401 (fixtures)

pytestmark = pytest.mark.usefixtures("records", "env")

SELECTION = {
    "lifecycleStateIds": ["state-draft"],
    "includes": ["categories"],
    "headerLanguage": "seg-da",
    "dryData": True,
    "fields": ["sku", "product-name"],
    "dimensionScope": {"dim-language": "seg-da"},
}


def _file(run: Any) -> list[list[str]]:
    path = Path(run.destination_path.removeprefix("file://"))
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))


def test_a_job_takes_every_option_of_the_selection_and_its_run_honours_them(
    client: TestClient, admin: dict[str, str]
) -> None:
    job_id = make(client, admin, "local", {"path": "sel"}, **SELECTION)
    shown = client.get(f"/api/v1/export-jobs/{job_id}", headers=admin).json()
    assert {key: shown[key] for key in SELECTION} == SELECTION

    run = ended(run_now(client, admin, job_id))
    assert run.status == "success", run.error
    rows = _file(run)
    assert rows[0] == ["Varenummer", "Produktnavn", "categories"]  # Danish labels, the categories column
    assert ["CW-001", "Kyst Vindjakke", "cat-outerwear|cat-spring-collection"] in rows[1:]

    # a state no record is in: the next run exports nothing but its header
    replaced = client.put(
        f"/api/v1/export-jobs/{job_id}", json={"lifecycleStateIds": ["state-review"]}, headers=admin
    )
    assert replaced.status_code == 200 and replaced.json()["lifecycleStateIds"] == ["state-review"]
    assert replaced.json()["headerLanguage"] == "seg-da"  # what the PUT did not carry stays
    run = ended(run_now(client, admin, job_id))
    assert run.status == "success" and run.record_count == 0


def test_a_jobs_selection_is_refused_as_an_exports_would_be(
    client: TestClient, admin: dict[str, str]
) -> None:
    base = {
        "name": "bad",
        "destinationType": "local",
        "destinationConfig": {"path": "x"},
        "format": "csv",
        "schedule": "0 2 * * *",
    }
    for extra, field in (
        ({"headerLanguage": "seg-xx"}, "headerLanguage"),
        ({"includes": ["pictures"]}, "includes"),
        ({"includes": ["variants"], "includeVariants": False}, ""),
        ({"dryData": "yes"}, "dryData"),
        ({"csv": {"delimiter": ",", "decimalSeparator": ","}}, "csv"),
        ({"csv": {"dateFormat": "%A"}}, "csv"),
        ({"csv": {"quote": "`"}}, "csv"),
        ({"format": "xlsx", "csv": {"delimiter": ";"}}, "csv"),
    ):
        answer = client.post("/api/v1/export-jobs", json={**base, **extra}, headers=admin)
        assert answer.status_code == 422, (extra, answer.text)
        fields = [d.get("field", "") for d in answer.json()["error"]["details"]]
        assert any(field in name for name in fields), (extra, fields)
        exported = client.post("/api/v1/exports", json={"format": "csv", **extra}, headers=admin)
        assert exported.status_code == 422, (extra, exported.text)


def test_a_job_writes_its_csv_dialect_and_put_can_drop_it(client: TestClient, admin: dict[str, str]) -> None:
    dialect = {"delimiter": ";", "decimalSeparator": ",", "dateFormat": "%d.%m.%Y", "bom": True}
    job_id = make(
        client,
        admin,
        "local",
        {"path": "dialect"},
        csv=dialect,
        fields=["sku", "price", "product-name"],
        dimensionScope={"dim-market": "seg-dk"},
    )
    shown = client.get(f"/api/v1/export-jobs/{job_id}", headers=admin).json()["csv"]
    assert {key: shown[key] for key in dialect} == dialect and shown["lineTerminator"] == "\r\n"

    run = ended(run_now(client, admin, job_id))
    assert run.status == "success", run.error
    data = Path(run.destination_path.removeprefix("file://")).read_bytes()
    assert data.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == ["sku", "price", "product-name"]
    assert next(row for row in rows if row[0] == "CW-001")[1] == "129,99"

    dropped = client.put(f"/api/v1/export-jobs/{job_id}", json={"csv": None}, headers=admin)
    assert dropped.status_code == 200 and dropped.json()["csv"] is None
    run = ended(run_now(client, admin, job_id))
    rows = _file(run)
    assert rows[0] == ["sku", "price", "product-name"]
    assert next(row for row in rows if row[0] == "CW-001")[1] == "129.99"
