"""Seed 004's curl example (Commerce Layer), run by curl as written against a live server.

Only the base URL and the token are replaced. The rest of the dialect is tested in-process in
``test_commercelayer.py``.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from tests.compat.curl import Curl, live_curl
from tests.exports.helpers import read_json

CREATE = """curl -g -X POST \\
  'https://yourdomain.commercelayer.io/api/exports' \\
  -H 'Accept: application/vnd.api+json' \\
  -H 'Authorization: Bearer your-access-token' \\
  -H 'Content-Type: application/vnd.api+json' \\
  -d '{
  "data": {
    "type": "exports",
    "attributes": {
      "resource_type": "skus"
    }
  }
}'"""

ATTRIBUTES = [
    "resource_type",
    "format",
    "status",
    "includes",
    "fields",
    "filters",
    "dry_data",
    "started_at",
    "completed_at",
    "interrupted_at",
    "records_count",
    "attachment_url",
    "errors_log",
    "created_at",
    "updated_at",
    "reference",
    "reference_origin",
    "metadata",
]


@pytest.fixture(scope="module")
def curl() -> Iterator[Curl]:
    with live_curl(
        "https://yourdomain.commercelayer.io/api", "/compat/commercelayer/api", token="your-access-token"
    ) as run:
        yield run


def test_create_an_export_of_skus_as_the_seed_shows(curl: Curl) -> None:
    command = curl.command(CREATE) + " -w '\\n%{http_code} %{content_type}'"  # the status line, to check
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60, check=True)
    body, _, status = done.stdout.rpartition("\n")
    assert status == "201 application/vnd.api+json"
    data = json.loads(body)["data"]
    assert list(data) == ["id", "type", "links", "attributes", "relationships", "meta"]
    assert data["type"] == "exports"
    own = f"{curl.server.url}/compat/commercelayer/api/exports/{data['id']}"
    assert data["links"] == {"self": own}
    attributes = data["attributes"]
    assert list(attributes) == ATTRIBUTES
    assert attributes["resource_type"] == "skus" and attributes["format"] == "json"
    assert attributes["status"] in ("pending", "in_progress", "completed")
    assert attributes["records_count"] == 2  # the demo world's two products
    assert attributes["dry_data"] is False and attributes["metadata"] == {}
    assert data["relationships"]["events"]["links"] == {
        "self": f"{own}/relationships/events",
        "related": f"{own}/events",
    }

    headers = {**curl.server.headers, "Accept": "application/vnd.api+json"}
    with httpx.Client(headers=headers, timeout=30) as client:
        for _ in range(300):
            attributes = client.get(own).json()["data"]["attributes"]
            if attributes["status"] == "completed":
                break
        assert attributes["status"] == "completed", attributes
        assert attributes["started_at"] and attributes["completed_at"] >= attributes["started_at"]
        assert attributes["interrupted_at"] is None and attributes["errors_log"] == {}
        # attachment_url downloads without a token, as the vendor's S3 links do
        file = httpx.get(attributes["attachment_url"], timeout=30)
        assert file.status_code == 200
        records = read_json(file.content)
        assert sorted(r["sku"] for r in records) == ["CW-001", "CW-001"]
        events = client.get(f"{own}/events").json()["data"]
        assert [e["attributes"]["name"] for e in events] == ["create", "start", "complete"]
