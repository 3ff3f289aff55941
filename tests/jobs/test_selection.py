"""Export jobs take the one selection one-off exports take: lifecycle states, includes, header language
and dry data are stored, shown, replaced by PUT, checked like an export's, and honoured by the run."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from tests.exports.helpers import wait
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


COLUMNS = [
    {"header": "SKU", "attribute": "sku"},
    {"header": "title_da", "attribute": "product-name", "scope": {"dim-language": "seg-da"}},
    {"header": "title_en", "attribute": "product-name", "scope": {"dim-language": "seg-en"}},
    {"header": "price_dk", "attribute": "price", "scope": {"dim-market": "seg-dk"}},
    {"header": "brand", "attribute": "brand", "default": "no brand"},
    {"header": "channel", "value": "webshop"},
    {"header": "ID", "field": "id"},
]


def test_a_job_writes_its_columns_and_put_can_swap_them_for_fields(
    client: TestClient, admin: dict[str, str]
) -> None:
    job_id = make(
        client,
        admin,
        "local",
        {"path": "columns"},
        columns=COLUMNS,
        csv={"delimiter": ";", "decimalSeparator": ","},
        dimensionScope={"dim-market": "seg-de"},
    )
    shown = client.get(f"/api/v1/export-jobs/{job_id}", headers=admin).json()["columns"]
    assert [{k: v for k, v in c.items() if v is not None} for c in shown] == COLUMNS
    run = ended(run_now(client, admin, job_id))
    assert run.status == "success", run.error
    data = Path(run.destination_path.removeprefix("file://")).read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(data), delimiter=";"))
    assert rows[0] == [c["header"] for c in COLUMNS]
    by_id = {row[-1]: row for row in rows[1:]}
    # two languages side by side; the column's market over the job's; the default; the constant
    assert by_id["ent-coastal-wb"][:6] == [
        "CW-001",
        "Kyst Vindjakke",
        "Coastal Windbreaker",
        "969",
        "Ma Marque",
        "webshop",
    ]
    assert by_id["ent-xK9mP2vL"][3:5] == ["129,99", "no brand"]
    frame = pd.read_csv(io.StringIO(data), sep=";", decimal=",")  # an independent reader
    assert list(frame.columns) == [c["header"] for c in COLUMNS]
    assert frame["price_dk"].dtype == float and 129.99 in frame["price_dk"].tolist()

    both = client.put(f"/api/v1/export-jobs/{job_id}", json={"fields": ["sku"]}, headers=admin)
    assert both.status_code == 422 and both.json()["error"]["details"][0]["field"] == "columns"
    swapped = client.put(
        f"/api/v1/export-jobs/{job_id}", json={"fields": ["sku"], "columns": None}, headers=admin
    )
    assert swapped.status_code == 200 and swapped.json()["columns"] is None
    rows = list(
        csv.reader(
            io.StringIO(
                Path(
                    ended(run_now(client, admin, job_id)).destination_path.removeprefix("file://")
                ).read_text()
            ),
            delimiter=";",
        )
    )
    assert rows[0] == ["sku"]


def test_a_one_off_export_takes_columns_and_a_column_per_language(
    client: TestClient, admin: dict[str, str]
) -> None:
    for body, headers in (
        ({"columns": COLUMNS}, [c["header"] for c in COLUMNS]),
        (
            {"fields": ["sku", "product-name"], "dimensionScope": {"dim-language": ["seg-da", "seg-en"]}},
            ["sku", "product-name-seg-da", "product-name-seg-en"],
        ),
    ):
        created = client.post("/api/v1/exports", json={"format": "csv", **body}, headers=admin)
        assert created.status_code in (200, 201, 202), created.text
        shown = created.json()
        assert shown["dimensionScope"] == body.get("dimensionScope")
        assert (shown["columns"] is None) == ("columns" not in body)
        shown = wait(client, admin, shown["id"])
        assert shown["status"] == "completed", shown
        data = client.get(shown["downloadUrl"]).content.decode("utf-8")
        rows = list(csv.reader(io.StringIO(data)))
        assert rows[0] == headers
        if "fields" in body:
            assert ["CW-001", "Kyst Vindjakke", "Coastal Windbreaker"] in rows


@pytest.mark.parametrize(
    ("extra", "field", "words"),
    [
        ({"columns": [{"header": "a", "attribute": "nope"}]}, "columns[0]", "'nope' is not an attribute"),
        (
            {
                "columns": [
                    {"header": "a", "field": "id"},
                    {"header": "b", "attribute": "sku", "scope": {"dim-x": "s"}},
                ]
            },
            "columns[1]",
            "dimension 'dim-x'",
        ),
        ({"columns": [{"header": "a", "field": "sku"}]}, "columns[0]", "not a record field"),
        (
            {"columns": [{"header": "a", "field": "id"}, {"header": "a", "attribute": "sku"}]},
            "columns[1]",
            "header 'a'",
        ),
        ({"columns": [{"header": "p", "attribute": "price", "default": "free"}]}, "columns[0]", "a number"),
        ({"columns": [{"header": "a", "attribute": "sku", "value": "x"}]}, "columns", "exactly one"),
        ({"columns": [{"header": "a", "field": "id"}], "fields": ["sku"]}, "", "not both"),
        (
            {"columns": [{"header": "a", "field": "id"}], "dimensionScope": {"dim-language": ["seg-da"]}},
            "dimensionScope",
            "one segment",
        ),
        ({"dimensionScope": {"dim-language": ["seg-da", "seg-xx"]}}, "dimensionScope", "'seg-xx'"),
        ({"dimensionScope": {"dim-language": []}}, "dimensionScope", "no segment"),
        ({"columns": [{"header": "e", "value": ""}]}, "columns", "at least 1 character"),
        (
            {"columns": [{"header": "d", "attribute": "release-date", "default": "20240105"}]},
            "columns[0]",
            "YYYY",
        ),
        (
            {
                "columns": [{"header": "id", "field": "id"}, {"header": "categories", "attribute": "sku"}],
                "includes": ["categories"],
            },
            "columns[1]",
            "includes categories adds",
        ),
        (
            {"columns": [{"header": "lifecycleStateId", "value": "x"}], "includes": ["lifecycleState"]},
            "includes",
            "lifecycleState adds",
        ),
    ],
)
def test_columns_are_refused_naming_the_column(
    client: TestClient, admin: dict[str, str], extra: dict[str, Any], field: str, words: str
) -> None:
    for path, base in (
        ("/api/v1/exports", {"format": "csv"}),
        (
            "/api/v1/export-jobs",
            {
                "name": "bad",
                "destinationType": "local",
                "destinationConfig": {"path": "x"},
                "format": "csv",
                "schedule": "0 2 * * *",
            },
        ),
    ):
        answer = client.post(path, json={**base, **extra}, headers=admin)
        assert answer.status_code == 422, (path, extra, answer.text)
        error = answer.json()["error"]
        fields = [str(d.get("field", "")) for d in error["details"]]
        assert any(field in name for name in fields), (path, fields)
        assert words in error["message"] + str(error["details"]), (path, error)


def test_value_labels_write_the_demo_colours_in_danish(client: TestClient, admin: dict[str, str]) -> None:
    record = {
        "schemaId": "schema-apparel",
        "values": {"sku": [{"scope": {}, "value": "LBL-001"}], "color": [{"scope": {}, "value": "Navy"}]},
    }
    assert client.post("/api/v1/records", json=record, headers=admin).status_code == 201
    body = {"format": "csv", "fields": ["sku", "color"], "filters": {"sku": "LBL-001"}, "valueLabels": True}
    for scope, expected in (
        ({"dim-language": "seg-da"}, "Marineblå"),
        ({"dim-language": "seg-de"}, "Marineblau"),
    ):
        created = client.post("/api/v1/exports", json={**body, "dimensionScope": scope}, headers=admin)
        assert created.status_code == 202 and created.json()["valueLabels"] is True, created.text
        done = wait(client, admin, created.json()["id"])
        assert client.get(done["downloadUrl"]).text.splitlines() == ["sku,color", f"LBL-001,{expected}"]
    job_id = make(
        client, admin, "local", {"path": "labels"}, **{**body, "dimensionScope": {"dim-language": "seg-da"}}
    )
    assert client.get(f"/api/v1/export-jobs/{job_id}", headers=admin).json()["valueLabels"] is True
    run = ended(run_now(client, admin, job_id))
    assert _file(run) == [["sku", "color"], ["LBL-001", "Marineblå"]]


def test_numbers_json_cannot_hold_and_unstorable_puts_are_refused(
    client: TestClient, admin: dict[str, str]
) -> None:
    infinite = '{"format": "json", "columns": [{"header": "p", "attribute": "price", "default": 1e400}]}'
    answer = client.post(
        "/api/v1/exports", content=infinite, headers={**admin, "Content-Type": "application/json"}
    )
    assert answer.status_code == 422, answer.text
    job_id = make(client, admin, "local", {"path": "put"}, columns=COLUMNS)
    for body in (
        {"columns": [{"header": "x", "value": 2**70}]},
        {"columns": [{"header": "x\u0000y", "value": 1}]},
        {"filters": {"sku": "A\u0000"}},
    ):
        put = client.put(f"/api/v1/export-jobs/{job_id}", json=body, headers=admin)
        assert put.status_code == 422, (body, put.text)
    shown = client.get(f"/api/v1/export-jobs/{job_id}", headers=admin).json()
    assert [c["header"] for c in shown["columns"]] == [c["header"] for c in COLUMNS]  # nothing stored
