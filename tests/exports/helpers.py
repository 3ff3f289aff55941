"""Plain helpers of the one-off export tests: records, polling, reading files back."""

from __future__ import annotations

import csv
import gzip
import io
import json
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient

from skuport.db import session_scope

TERMINAL = {"completed", "failed", "interrupted"}


def product(
    sku: str,
    name: str,
    *,
    price: float = 100.0,
    brand: str | None = None,
    ean: str | None = None,
    price_dk: float | None = None,
    name_da: str | None = None,
    in_stock: bool | None = None,
) -> dict[str, Any]:
    """Values of an apparel record in the seed world."""
    values: dict[str, Any] = {
        "product-name": [{"scope": {}, "value": name}],
        "sku": [{"scope": {}, "value": sku}],
        "price": [{"scope": {}, "value": price}],
    }
    if name_da is not None:
        values["product-name"].append({"scope": {"dim-language": "seg-da"}, "value": name_da})
    if price_dk is not None:
        values["price"].append({"scope": {"dim-market": "seg-dk"}, "value": price_dk})
    if brand is not None:
        values["brand"] = [{"scope": {}, "value": brand}]
    if ean is not None:
        values["ean"] = [{"scope": {}, "value": ean}]
    if in_stock is not None:
        values["in-stock"] = [{"scope": {}, "value": in_stock}]
    return values


def add_records(*records: dict[str, Any], categories: dict[int, str] | None = None) -> list[str]:
    """Create records (values dicts) through the records service; returns their ids."""
    from skuport.records.service import assign_category, create_record

    ids = []
    with session_scope() as session:
        for i, values in enumerate(records):
            record = create_record(
                session,
                schema_id="schema-apparel",
                values=values,
                user_id="user-admin",
                enforce_plan_limit=False,
            )
            if categories and i in categories:
                assign_category(
                    session,
                    record_id=record.id,
                    category_id=categories[i],
                    sort_order=0,
                    user_id="user-admin",
                )
            ids.append(record.id)
    return ids


def add_many(count: int, *, brand: str = "Bulk") -> None:
    """``count`` simple records."""
    add_records(
        *(product(f"BULK-{i:06d}", f"Bulk item {i}", price=float(i), brand=brand) for i in range(count))
    )


def wait(
    client: TestClient,
    headers: dict[str, str],
    export_id: str,
    *,
    timeout: float = 60,
    until: Callable[[dict[str, Any]], bool] | None = None,
) -> dict[str, Any]:
    """Poll GET /exports/{id} until it ends (or ``until`` holds)."""
    check = until or (lambda body: body["status"] in TERMINAL)
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/api/v1/exports/{export_id}", headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        if check(body):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"export {export_id} still {body['status']} after {timeout}s: {body}")
        time.sleep(0.05)


def create(client: TestClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    """POST /exports and check the 202."""
    response = client.post("/api/v1/exports", json=body, headers=headers)
    assert response.status_code == 202, response.text
    return response.json()


def run(client: TestClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    """Create an export and wait until it completes."""
    created = create(client, headers, **body)
    done = wait(client, headers, created["id"])
    assert done["status"] == "completed", done
    return done


def signed_path(download_url: str) -> str:
    """The path and query of an absolute downloadUrl (the test client's host is testserver)."""
    assert download_url.startswith("http://testserver/api/v1/exports/"), download_url
    return download_url.removeprefix("http://testserver")


def read_csv(data: bytes) -> list[dict[str, str]]:
    """Rows of an RFC 4180 CSV file (UTF-8, optional BOM), read by the csv module."""
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def read_json(data: bytes) -> list[dict[str, Any]]:
    """The records of a JSON export (one array, or an object holding one)."""
    parsed = json.loads(data)
    if isinstance(parsed, dict):
        arrays = [v for v in parsed.values() if isinstance(v, list)]
        assert len(arrays) == 1, f"expected one array in {list(parsed)}"
        parsed = arrays[0]
    assert isinstance(parsed, list)
    return parsed


def read_jsonl(data: bytes) -> list[dict[str, Any]]:
    """One JSON object per line."""
    return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


def read_xml(data: bytes) -> list[ET.Element]:
    """The record elements of an XML export (the root's children)."""
    root = ET.fromstring(data)
    return list(root)


def read_xlsx(data: bytes) -> list[dict[str, Any]]:
    """Rows of the first sheet, keyed by the header row, read by openpyxl."""
    import openpyxl

    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    sheet = book.worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    header = [str(h) for h in rows[0]]
    return [dict(zip(header, row, strict=False)) for row in rows[1:]]


READERS: dict[str, Callable[[bytes], list[Any]]] = {
    "csv": read_csv,
    "json": read_json,
    "jsonl": read_jsonl,
    "xml": read_xml,
    "xlsx": read_xlsx,
}


def gunzip(data: bytes) -> bytes:
    """Decompress a gzip file."""
    return gzip.decompress(data)


def drain(timeout: float = 30) -> None:
    """Wait until the in-process executor has no export left running."""
    from skuport.scheduling.executor import get_executor

    executor: Any = get_executor()
    deadline = time.monotonic() + timeout
    while executor.pending() and time.monotonic() < deadline:
        time.sleep(0.02)


@contextmanager
def gated_pipeline(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[threading.Event, threading.Event]]:
    """Hold the real pipeline at its first progress report until ``release`` is set.

    Yields ``(reached, release)``: ``reached`` is set once the export is running inside the pipeline.
    """
    import skuport.exporting.pipeline as pipeline

    reached, release = threading.Event(), threading.Event()
    real = pipeline.run_export

    def gated(spec: Any, *, out_dir: Any = None, control: Any = None, **options: Any) -> Any:
        inner = control.progress if control is not None else None

        def progress(done: int, total: int) -> None:
            reached.set()
            release.wait(30)
            if inner is not None:
                inner(done, total)

        if control is not None:
            control.progress = progress
        return real(spec, out_dir=out_dir, control=control, **options)

    monkeypatch.setattr(pipeline, "run_export", gated)
    try:
        yield reached, release
    finally:
        release.set()
        drain()
