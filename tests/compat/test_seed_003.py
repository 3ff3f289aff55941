"""Every curl example of seed 003 (Products Manager), run by curl as written against a live server.

Only the base URL, the token and the example's placeholder id are replaced.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.compat.curl import Curl, live_curl
from tests.exports.helpers import read_json, read_xlsx
from tests.live import LiveServer

VENDOR_BASE = "https://api.productsmanager.app/api/v1"

CREATE = """curl -X POST https://api.productsmanager.app/api/v1/exports \\
  -H "Authorization: Bearer {api_key}" \\
  -H "Content-Type: application/json" \\
  -d '{
    "format": "csv",
    "filters": {"brand": "Ma Marque"},
    "fields": ["ean", "title", "price", "stock"]
  }'"""

STATUS = """curl https://api.productsmanager.app/api/v1/exports/exp_01HQ... \\
  -H "Authorization: Bearer {api_key}\""""

DOWNLOAD = """curl https://api.productsmanager.app/api/v1/exports/exp_01HQ.../download \\
  -H "Authorization: Bearer {api_key}" \\
  -o catalog_export.csv"""

STATUS_KEYS = [
    "id",
    "status",
    "format",
    "row_count",
    "file_size_bytes",
    "download_url",
    "expires_at",
    "created_at",
    "completed_at",
]


@pytest.fixture(scope="module")
def curl() -> Iterator[Curl]:
    with live_curl(f"{VENDOR_BASE}", "/compat/productsmanager/api/v1", token="{api_key}") as run:
        yield run


def parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_create_poll_and_download_as_the_seed_shows(curl: Curl, tmp_path: Path) -> None:
    created = json.loads(curl(CREATE))
    assert list(created) == ["id", "status", "format", "created_at"]
    assert created["status"] == "pending" and created["format"] == "csv"
    assert abs((dt.datetime.now(dt.UTC) - parse_time(created["created_at"])).total_seconds()) < 60

    status = curl.poll(STATUS, ident=created["id"], until=lambda body: body["status"] == "completed")
    assert list(status) == STATUS_KEYS
    assert status["id"] == created["id"] and status["format"] == "csv" and status["row_count"] == 1
    assert status["download_url"] == (
        f"{curl.server.url}/compat/productsmanager/api/v1/exports/{created['id']}/download"
    )
    assert parse_time(status["expires_at"]) - parse_time(status["completed_at"]) == dt.timedelta(days=7)

    curl(DOWNLOAD, ident=created["id"], cwd=tmp_path)
    data = (tmp_path / "catalog_export.csv").read_bytes()
    # exactly the seed's fields, in its order, for the one product of the brand
    assert data == b"ean,title,price,stock\r\n5701234567892,Coastal Windbreaker,129.99,42\r\n"
    assert status["file_size_bytes"] == len(data)


def test_json_and_xlsx_hold_the_same_fields_and_the_native_view_agrees(curl: Curl) -> None:
    server: LiveServer = curl.server
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=30) as client:
        files = {}
        for fmt in ("json", "xlsx"):
            response = client.post(
                "/compat/productsmanager/api/v1/exports",
                json={
                    "format": fmt,
                    "filters": {"brand": "Ma Marque"},
                    "fields": ["ean", "title", "price", "stock"],
                },
            )
            assert response.status_code == 202, response.text
            ident = response.json()["id"]
            status = curl.poll(STATUS, ident=ident, until=lambda body: body["status"] == "completed")
            native = client.get(f"/api/v1/exports/{ident}").json()
            assert native["format"] == fmt and native["recordCount"] == status["row_count"] == 1
            assert native["fileSize"] == status["file_size_bytes"]
            file = client.get(f"/compat/productsmanager/api/v1/exports/{ident}/download")
            assert file.status_code == 200 and len(file.content) == status["file_size_bytes"]
            files[fmt] = file.content
    product = {"ean": "5701234567892", "title": "Coastal Windbreaker", "price": 129.99, "stock": 42}
    assert read_json(files["json"]) == [product]
    assert read_xlsx(files["xlsx"]) == [product]
