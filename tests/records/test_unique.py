"""The ``unique`` rule: no two records of a schema hold the same value of that attribute (a SKU)."""

from __future__ import annotations

import threading
from typing import Any

from fastapi.testclient import TestClient

from skuport.db import session_scope
from skuport.errors import ValidationFailed
from skuport.records.service import create_record

BASE = "/api/v1"


def make_unique(client: TestClient, admin: dict[str, str], alias: str = "sku") -> Any:
    return client.put(
        f"{BASE}/schemas/schema-apparel/attributes/{alias}",
        headers=admin,
        json={"validation": {"unique": True}},
    )


def record(client: TestClient, admin: dict[str, str], sku: str, **extra: Any) -> Any:
    values = {"product-name": [{"scope": {}, "value": f"Item {sku}"}], "sku": [{"scope": {}, "value": sku}]}
    return client.post(
        f"{BASE}/records", headers=admin, json={"schemaId": "schema-apparel", "values": values, **extra}
    )


def test_a_unique_attribute_refuses_a_value_another_record_holds(
    client: TestClient, admin: dict[str, str]
) -> None:
    response = make_unique(client, admin)
    assert response.status_code == 200, response.text
    assert response.json()["validation"]["unique"] is True
    first = record(client, admin, "U-1").json()["id"]
    again = record(client, admin, "U-1")
    assert again.status_code == 422
    body = again.json()["error"]
    assert body["code"] == "duplicate_value" and "sku" in body["message"] and first in body["message"]
    assert body["details"][0]["recordId"] == first
    second = record(client, admin, "U-2").json()["id"]
    taken = client.patch(
        f"{BASE}/records/{second}/values/sku",
        headers=admin,
        json={"scopedValues": [{"scope": {}, "value": "U-1"}]},
    )
    assert taken.status_code == 422 and taken.json()["error"]["code"] == "duplicate_value"
    # the record keeps its own value, and changing other attributes is not blocked by it
    assert (
        client.patch(
            f"{BASE}/records/{first}/values/sku",
            headers=admin,
            json={"scopedValues": [{"scope": {}, "value": "U-1"}]},
        ).status_code
        == 200
    )
    assert (
        client.put(
            f"{BASE}/records/{first}",
            headers=admin,
            json={"values": {"brand": [{"scope": {}, "value": "Ma Marque"}]}},
        ).status_code
        == 200
    )
    # a freed value can be taken
    assert client.delete(f"{BASE}/records/{first}", headers=admin).status_code in (200, 204)
    assert (
        client.patch(
            f"{BASE}/records/{second}/values/sku",
            headers=admin,
            json={"scopedValues": [{"scope": {}, "value": "U-1"}]},
        ).status_code
        == 200
    )


def test_unique_needs_a_fitting_attribute_and_no_duplicates_yet(
    client: TestClient, admin: dict[str, str]
) -> None:
    scoped = make_unique(client, admin, "product-name")  # scoped by language
    assert scoped.status_code == 422 and scoped.json()["error"]["details"][0]["rule"] == "unique"
    boolean = make_unique(client, admin, "in-stock")
    assert boolean.status_code == 422 and "unique" in boolean.json()["error"]["message"]
    record(client, admin, "DUP-1")
    record(client, admin, "DUP-1")
    refused = make_unique(client, admin)
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["details"][0] == {"value": "DUP-1", "records": 2}


def test_concurrent_writers_of_one_value_get_one_record(client: TestClient, admin: dict[str, str]) -> None:
    assert make_unique(client, admin).status_code == 200
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def write() -> None:
        barrier.wait()
        try:
            with session_scope() as session:
                create_record(
                    session,
                    schema_id="schema-apparel",
                    user_id="user-admin",
                    values={"sku": [{"scope": {}, "value": "RACE-1"}]},
                )
            outcomes.append("created")
        except ValidationFailed as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=write) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["created", "duplicate_value", "duplicate_value", "duplicate_value"]
    listed = client.get(f"{BASE}/records", headers=admin, params={"filter[sku]": "RACE-1"}).json()
    assert listed["total"] == 1
