"""The vendor dialects in-process: JSON:API errors, paging, interrupt, delete, limits, failed exports."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.exports.helpers import add_records, product, read_csv, read_json
from tests.factories import make_user

CL = "/compat/commercelayer/api/exports"
PM = "/compat/productsmanager/api/v1/exports"
JSONAPI = "application/vnd.api+json"


@pytest.fixture
def products(admin: dict[str, str]) -> list[str]:
    return add_records(
        product("CW-001", "Coastal Windbreaker", price=129.99, brand="Ma Marque", ean="5701234567890"),
        product("MM-002", "Harbour Parka", price=249.0, brand="Ma Marque"),
        product("OT-003", "Trail Fleece", price=59.5, brand="Other"),
    )


@pytest.fixture
def cl(admin: dict[str, str]) -> dict[str, str]:
    return {**admin, "Content-Type": JSONAPI, "Accept": JSONAPI}


def document(**attributes: Any) -> dict[str, Any]:
    return {"data": {"type": "exports", "attributes": {"resource_type": "skus", **attributes}}}


def wait_cl(
    client: TestClient,
    headers: dict[str, str],
    ident: str,
    until: Callable[[dict[str, Any]], bool] = lambda a: a["status"] in ("completed", "interrupted"),
) -> dict[str, Any]:
    for _ in range(600):
        attributes: dict[str, Any] = client.get(f"{CL}/{ident}", headers=headers).json()["data"]["attributes"]
        if until(attributes):
            return attributes
        time.sleep(0.05)
    raise AssertionError(f"export {ident} still {attributes['status']}")


def test_suffixed_filters_and_vendor_field_names(
    client: TestClient, cl: dict[str, str], products: list[str]
) -> None:
    # code is the sku, name the product name: the vendor's names in fields and in suffixed filters
    response = client.post(
        CL,
        headers=cl,
        json=document(
            format="csv", fields=["code", "name", "price"], filters={"code_eq": "MM-002"}, reference="nightly"
        ),
    )
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == JSONAPI
    data = response.json()["data"]
    assert response.headers["location"] == data["links"]["self"]
    assert data["attributes"]["filters"] == {"sku_eq": "MM-002"}
    assert data["attributes"]["records_count"] == 1 and data["attributes"]["reference"] == "nightly"
    done = wait_cl(client, cl, data["id"])
    assert done["status"] == "completed"
    file = client.get(done["attachment_url"].removeprefix("http://testserver"))
    assert read_csv(file.content) == [{"sku": "MM-002", "product-name": "Harbour Parka", "price": "249"}]


def test_errors_are_json_api_error_objects(
    client: TestClient, cl: dict[str, str], products: list[str]
) -> None:
    # validation of the document: a pointer to the attribute
    response = client.post(CL, headers=cl, json=document(format="xml"))
    assert response.status_code == 422 and response.headers["content-type"] == JSONAPI
    (error,) = response.json()["errors"]
    assert error["status"] == "422" and error["code"] == "VALIDATION_ERROR"
    assert error["source"] == {"pointer": "/data/attributes/format"} and error["title"] and error["detail"]
    # the exports service's own refusals, pointed at the attribute too
    error = client.post(CL, headers=cl, json=document(fields=["nope"])).json()["errors"][0]
    assert error["source"] == {"pointer": "/data/attributes/fields"} and "'nope'" in error["detail"]
    assert error["meta"] == {"code": "invalid_export"}
    error = client.post(CL, headers=cl, json=document(filters={"brand": "Nobody"})).json()["errors"][0]
    assert error["status"] == "422" and error["meta"] == {"code": "no_matching_records"}
    # the wrong type, a missing resource_type, not JSON, not JSON:API, no token, unknown export
    body = {"data": {"type": "skus", "attributes": {}}}
    pointers = {e["source"]["pointer"] for e in client.post(CL, headers=cl, json=body).json()["errors"]}
    assert pointers == {"/data/type", "/data/attributes/resource_type"}
    response = client.post(CL, headers=cl, content=b"{nope")
    assert response.status_code == 400 and response.json()["errors"][0]["code"] == "BAD_REQUEST"
    response = client.post(CL, headers={**cl, "Content-Type": "text/plain"}, content=b"{}")
    assert response.status_code == 415 and response.json()["errors"][0]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    response = client.post(CL, headers={"Content-Type": JSONAPI}, json=document())
    assert response.status_code == 401 and response.json()["errors"][0]["code"] == "UNAUTHORIZED"
    response = client.get(f"{CL}/exp-nope", headers=cl)
    assert response.status_code == 404 and response.json()["errors"][0]["code"] == "RECORD_NOT_FOUND"


def test_the_dialects_record_limit(
    client: TestClient, cl: dict[str, str], products: list[str], configure: Callable[..., None]
) -> None:
    configure(compat_commercelayer_max_records=2)
    response = client.post(CL, headers=cl, json=document())
    assert response.status_code == 422
    error = response.json()["errors"][0]
    assert error["meta"] == {"code": "too_many_records"} and "the limit is 2" in error["detail"]
    assert client.post(CL, headers=cl, json=document(filters={"brand_eq": "Ma Marque"})).status_code == 201
    # the native API keeps its own limit
    assert client.post("/api/v1/exports", headers=cl, json={"format": "json"}).status_code == 202


def test_list_pages_interrupt_and_delete(
    client: TestClient, cl: dict[str, str], products: list[str], configure: Callable[..., None]
) -> None:
    configure(export_max_active_per_user=10)
    ids = [
        client.post(CL, headers=cl, json=document(reference=f"r{i}")).json()["data"]["id"] for i in range(3)
    ]
    first = client.get(CL, headers=cl, params={"page[number]": 1, "page[size]": 2}).json()
    assert [e["id"] for e in first["data"]] == ids[::-1][:2]
    assert first["meta"] == {"record_count": 3, "page_count": 2}
    assert "page%5Bnumber%5D=2" in first["links"]["next"] and "prev" not in first["links"]
    second = client.get(CL, headers=cl, params={"page[number]": 2, "page[size]": 2}).json()
    assert [e["id"] for e in second["data"]] == [ids[0]] and "next" not in second["links"]
    error = client.get(CL, headers=cl, params={"page[size]": 26}).json()["errors"][0]
    assert error["status"] == "422" and error["source"]["pointer"] == "/query/page[size]"

    for ident in ids:
        wait_cl(client, cl, ident)
    # a finished export cannot be interrupted: 409 as an error object
    patch = {"data": {"type": "exports", "id": ids[0], "attributes": {"_interrupt": True}}}
    response = client.patch(f"{CL}/{ids[0]}", headers=cl, json=patch)
    assert response.status_code == 409 and response.json()["errors"][0]["code"] == "CONFLICT"
    response = client.patch(
        f"{CL}/{ids[0]}", headers=cl, json={"data": {"type": "exports", "attributes": {"reference": "x"}}}
    )
    assert response.status_code == 422
    assert client.delete(f"{CL}/{ids[0]}", headers=cl).status_code == 204
    assert client.get(f"{CL}/{ids[0]}", headers=cl).status_code == 404


def test_interrupt_a_pending_export(
    client: TestClient, cl: dict[str, str], products: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from skuport.scheduling import executor

    monkeypatch.setattr(executor.InProcessExecutor, "enqueue", lambda self, session, task, ident: None)
    ident = client.post(CL, headers=cl, json=document()).json()["data"]["id"]
    patch = {"data": {"type": "exports", "id": ident, "attributes": {"_interrupt": True}}}
    response = client.patch(f"{CL}/{ident}", headers=cl, json=patch)
    assert response.status_code == 200, response.text
    attributes = response.json()["data"]["attributes"]
    assert attributes["status"] == "interrupted" and attributes["interrupted_at"]
    events = client.get(f"{CL}/{ident}/events", headers=cl).json()["data"]
    assert [e["attributes"]["name"] for e in events] == ["create", "interrupt"]
    links = client.get(f"{CL}/{ident}/relationships/events", headers=cl).json()["data"]
    assert links == [
        {"type": "events", "id": f"{ident}-create"},
        {"type": "events", "id": f"{ident}-interrupt"},
    ]
    # Products Manager shows an interrupted export as failed, with why
    body = client.get(f"{PM}/{ident}", headers=cl).json()
    assert body["status"] == "failed" and body["error"] == "The export was interrupted."
    assert body["download_url"] is None and body["row_count"] is None


def test_exports_are_private_in_both_dialects(
    client: TestClient, cl: dict[str, str], products: list[str]
) -> None:
    ident = client.post(PM, headers=cl, json={"format": "json", "fields": ["sku", "ean"]}).json()["id"]
    other = make_user("user-other", "role-viewer")
    assert client.get(f"{PM}/{ident}", headers=other).status_code == 404
    assert client.get(f"{PM}/{ident}/download", headers=other).status_code == 404
    assert client.get(f"{CL}/{ident}", headers=other).status_code == 404
    for _ in range(600):
        if client.get(f"{PM}/{ident}", headers=cl).json()["status"] == "completed":
            break
        time.sleep(0.05)
    records = read_json(client.get(f"{PM}/{ident}/download", headers=cl).content)
    assert records[0] == {"sku": "CW-001", "ean": "5701234567890"} and len(records) == 3
    # Products Manager refuses what it does not know, in skuport's envelope
    response = client.post(PM, headers=cl, json={"format": "xml"})
    assert response.status_code == 422 and response.json()["error"]["code"] == "validation_error"
    response = client.post(PM, headers=cl, json={"format": "csv", "columns": []})
    assert response.status_code == 422


def test_what_the_native_request_refuses_is_a_422_in_both_dialects(
    client: TestClient, cl: dict[str, str], products: list[str]
) -> None:
    response = client.post(CL, headers=cl, json=document(metadata={"n": 2**64}, reference="a\x00b"))
    assert response.status_code == 422
    pointers = {e["source"]["pointer"] for e in response.json()["errors"]}
    assert pointers <= {"/data/attributes/metadata", "/data/attributes/reference", "/data/attributes/body"}
    response = client.post(PM, headers=cl, json={"format": "csv", "filters": {"stock": 2**70}})
    assert response.status_code == 422 and "64 bits" in response.json()["error"]["message"]
    response = client.post("/api/v1/exports", headers=cl, json={"metadata": {"n": -(2**63) - 1}})
    assert response.status_code == 422


def test_router_errors_under_the_json_api_dialect_are_error_objects(
    client: TestClient, cl: dict[str, str]
) -> None:
    response = client.put(f"{CL}/exp-x", headers=cl, json={})
    assert response.status_code == 405 and response.headers["content-type"] == JSONAPI
    assert response.headers["allow"] == "DELETE, GET, HEAD, PATCH"
    assert response.json()["errors"][0]["code"] == "METHOD_NOT_ALLOWED"
    missing = client.get("/compat/commercelayer/api/orders", headers=cl)
    assert missing.status_code == 404 and missing.json()["errors"][0]["code"] == "RECORD_NOT_FOUND"
    # everywhere else the envelope stays
    assert client.put("/api/v1/exports", headers=cl).json()["error"]["code"] == "method_not_allowed"


def test_errors_answered_before_routing_keep_the_dialects_shape(
    client: TestClient, cl: dict[str, str]
) -> None:
    response = client.get(f"{CL}?page%5Bsize%5D=2&x=%00", headers=cl)
    assert response.status_code == 400 and response.headers["content-type"] == JSONAPI
    assert "NUL" in response.json()["errors"][0]["detail"]
    big = client.post(CL, headers={**cl, "Content-Length": str(11 * 1024 * 1024)}, content=b"{}")
    assert big.status_code == 413 and big.json()["errors"][0]["code"] == "PAYLOAD_TOO_LARGE"
    assert client.get("/api/v1/records?x=%00", headers=cl).json()["error"]["code"] == "invalid_characters"
