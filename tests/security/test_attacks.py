"""The remaining attacks of the security review, against a live `skuport serve` (its log file read back).

Credentials in a webhook's URL and headers, the last admin, and the inputs that used to be 500s.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.live import LiveServer, live_server

SECRETS = ["s3cr3t-pass", "TOKEN-4242-abcd", "HEADER-KEY-9876"]
HOOK = "https://feeds:s3cr3t-pass@hooks.example.com/in?token=TOKEN-4242-abcd&site=shop"


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with live_server(None, {"SKUPORT_LOG_LEVEL": "info"}) as live:
        yield live


@pytest.fixture(scope="module")
def api(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{server.url}/api/v1", headers=server.headers, timeout=30) as client:
        yield client


def log_text(server: LiveServer) -> str:
    return (Path(server.env["SKUPORT_DATA_DIR"]) / "server.log").read_text(errors="replace")


def job(**destination: Any) -> dict[str, Any]:
    return {
        "name": "Partner hook",
        "destinationType": "webhook",
        "format": "json",
        "schedule": "0 2 * * *",
        "destinationConfig": destination,
        "active": False,
    }


def test_webhook_credentials_are_masked_on_read_and_never_logged(
    server: LiveServer, api: httpx.Client
) -> None:
    created = api.post("/export-jobs", json=job(url=HOOK, headers={"X-Api-Key": "HEADER-KEY-9876"}))
    assert created.status_code == 201, created.text
    ident = created.json()["id"]
    for body in (
        created.json(),
        api.get(f"/export-jobs/{ident}").json(),
        next(j for j in api.get("/export-jobs").json() if j["id"] == ident),
    ):
        config = body["destinationConfig"]
        assert config["url"] == "https://********@hooks.example.com/in?token=********&site=********"
        assert config["headers"] == {"X-Api-Key": "********"}
    # sending the masked values back keeps the secrets; the connection test (the name does not resolve
    # here) and a run fail without showing them
    masked = api.get(f"/export-jobs/{ident}").json()["destinationConfig"]
    assert api.put(f"/export-jobs/{ident}", json={"destinationConfig": masked}).status_code == 200
    tested = api.post(f"/export-jobs/{ident}/test")
    assert tested.status_code in (200, 422), tested.text
    assert not any(secret in tested.text for secret in SECRETS)
    text = log_text(server)
    assert "hooks.example.com" in text or ident in text  # the requests were logged
    assert not any(secret in text for secret in SECRETS)


def test_the_last_admin_cannot_lose_the_role_or_be_disabled(api: httpx.Client) -> None:
    for change in ({"roleIds": ["role-viewer"]}, {"active": False}):
        response = api.patch("/users/user-admin", json=change)
        assert response.status_code == 409, response.text
        assert response.json()["error"]["code"] == "last_admin"
    assert api.get("/users/me").json()["roleIds"] == ["role-admin"]


@pytest.mark.parametrize("value", [2**64, -(2**63) - 1, 10**30])
def test_numbers_beyond_64_bits_are_a_422_naming_the_attribute(api: httpx.Client, value: int) -> None:
    body = {
        "schemaId": "schema-apparel",
        "values": {
            "sku": [{"scope": {}, "value": "BIG-1"}],
            "product-name": [{"scope": {}, "value": "Big"}],
            "price": [{"scope": {}, "value": 1}],
            "weight": [{"scope": {}, "value": value}],
        },
    }
    response = api.post("/records", json=body)
    assert response.status_code == 422, response.text
    assert "weight" in response.text
    patched = api.patch(
        "/records/ent-coastal-wb/values/stock", json={"scopedValues": [{"scope": {}, "value": value}]}
    )
    assert patched.status_code == 422 and "stock" in patched.text


@pytest.mark.parametrize("path", ["/".join(["d"] * 2000), "x" * 5000, "feeds/" + "y" * 300 + "/{date}.csv"])
def test_unbounded_local_paths_are_a_422_at_create(api: httpx.Client, path: str) -> None:
    body = {**job(path=path), "destinationType": "local"}
    response = api.post("/export-jobs", json=body)
    assert response.status_code == 422, response.text
    assert "path" in response.json()["error"]["message"] + str(response.json()["error"]["details"])
