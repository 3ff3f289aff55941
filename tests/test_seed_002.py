"""Every example of seed 002 against a server started as the README says (SQLite or PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.live import LiveServer, suite_server


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with suite_server() as live:
        yield live


@pytest.fixture(scope="module")
def api(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{server.url}/api/v1", headers=server.headers, timeout=30) as client:
        yield client


RECORD_KEYS = {
    "id",
    "schemaId",
    "lifecycleStateId",
    "createdAt",
    "updatedAt",
    "createdBy",
    "updatedBy",
    "values",
}


def scoped(values: dict[str, Any]) -> None:
    for items in values.values():
        for item in items:
            assert set(item) == {"scope", "value"}


def test_list_records(api: httpx.Client) -> None:
    response = api.get("/records", params={"schemaId": "schema-apparel", "limit": 10})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"items", "total", "offset", "limit"}
    assert (body["offset"], body["limit"]) == (0, 10)
    assert body["total"] >= 2
    item = next(i for i in body["items"] if i["id"] == "ent-coastal-wb")
    assert RECORD_KEYS <= set(item)
    assert item["schemaId"] == "schema-apparel" and item["lifecycleStateId"] == "state-draft"
    assert item["createdBy"] == item["updatedBy"] == "user-admin"
    assert item["values"]["product-name"] == [
        {"scope": {}, "value": "Coastal Windbreaker"},
        {"scope": {"dim-language": "seg-da"}, "value": "Kyst Vindjakke"},
    ]
    assert item["values"]["price"] == [
        {"scope": {}, "value": 129.99},
        {"scope": {"dim-market": "seg-dk"}, "value": 969},
    ]


def test_create_record(api: httpx.Client) -> None:
    body = {
        "schemaId": "schema-apparel",
        "values": {
            "product-name": [
                {"scope": {}, "value": "Coastal Windbreaker"},
                {"scope": {"dim-language": "seg-da"}, "value": "Kyst Vindjakke"},
                {"scope": {"dim-language": "seg-de"}, "value": "Kuesten Windjacke"},
            ],
            "sku": [{"scope": {}, "value": "CW-001"}],
            "price": [{"scope": {}, "value": 129.99}, {"scope": {"dim-market": "seg-dk"}, "value": 969}],
            "description": [
                {"scope": {}, "value": "Lightweight windbreaker for coastal adventures"},
                {"scope": {"dim-language": "seg-da"}, "value": "Let vindjakke til eventyr langs kysten"},
            ],
        },
    }
    response = api.post("/records", json=body)
    assert response.status_code == 201
    created = response.json()
    assert RECORD_KEYS <= set(created)
    assert created["id"].startswith("ent-") and created["values"] == body["values"]


def test_get_record(api: httpx.Client) -> None:
    body = api.get("/records/ent-xK9mP2vL").json()
    assert RECORD_KEYS <= set(body)
    assert body["values"] == {
        "product-name": [
            {"scope": {}, "value": "Coastal Windbreaker"},
            {"scope": {"dim-language": "seg-da"}, "value": "Kyst Vindjakke"},
        ],
        "sku": [{"scope": {}, "value": "CW-001"}],
        "price": [{"scope": {}, "value": 129.99}],
    }


def test_update_record(api: httpx.Client) -> None:
    prices = [
        {"scope": {}, "value": 149.99},
        {"scope": {"dim-market": "seg-dk"}, "value": 1099},
        {"scope": {"dim-market": "seg-de"}, "value": 159.99},
    ]
    body = api.put("/records/ent-xK9mP2vL", json={"values": {"price": prices}}).json()
    assert {"id", "schemaId", "lifecycleStateId", "updatedAt", "updatedBy", "values"} <= set(body)
    assert body["updatedBy"] == "user-admin"
    assert body["values"]["price"] == prices
    assert body["values"]["sku"] == [{"scope": {}, "value": "CW-001"}]
    scoped(body["values"])


def test_patch_single_attribute(api: httpx.Client) -> None:
    names = [
        {"scope": {}, "value": "Coastal Windbreaker Pro"},
        {"scope": {"dim-language": "seg-da"}, "value": "Kyst Vindjakke Pro"},
        {"scope": {"dim-language": "seg-de"}, "value": "Kuesten Windjacke Pro"},
    ]
    body = api.patch("/records/ent-xK9mP2vL/values/product-name", json={"scopedValues": names}).json()
    assert {"id", "schemaId", "updatedAt", "values"} <= set(body)
    assert body["values"]["product-name"] == names
    assert body["values"]["price"][0] == {"scope": {}, "value": 149.99}


def test_completeness(api: httpx.Client) -> None:
    body = api.get("/records/ent-xK9mP2vL/completeness").json()
    assert set(body) == {"entityId", "lifecycleStateId", "filled", "total", "percentage", "missing"}
    assert body["entityId"] == "ent-xK9mP2vL" and body["lifecycleStateId"] == "state-draft"
    # After the PATCH: product-name has {}, da and de (en is missing); sku; price for dk and de.
    assert (body["filled"], body["total"], body["percentage"]) == (5, 6, 83)
    assert body["missing"] == [{"attributeAlias": "product-name", "scope": {"dim-language": "seg-en"}}]
    published = api.get("/records/ent-xK9mP2vL/completeness", params={"lifecycleStateId": "state-published"})
    missing = published.json()["missing"]
    assert {"attributeAlias": "material", "scope": {}} in missing
    assert {"attributeAlias": "description", "scope": {"dim-language": "seg-de"}} in missing
    assert all(set(m) == {"attributeAlias", "scope"} for m in missing)


def test_transition(api: httpx.Client) -> None:
    response = api.post("/records/ent-xK9mP2vL/transition", json={"transitionId": "trans-draft-to-review"})
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == "ent-xK9mP2vL" and body["lifecycleStateId"] == "state-review"
    assert {"schemaId", "updatedAt", "values"} <= set(body)


def test_available_transitions(api: httpx.Client) -> None:
    assert api.get("/records/ent-xK9mP2vL/transitions").json() == [
        {
            "id": "trans-review-to-published",
            "fromStateId": "state-review",
            "toStateId": "state-published",
            "name": "Publish",
            "allowedRoleIds": ["role-admin", "role-editor"],
            "requiresCompleteness": True,
        },
        {
            "id": "trans-review-to-draft",
            "fromStateId": "state-review",
            "toStateId": "state-draft",
            "name": "Send back to draft",
            "allowedRoleIds": ["role-admin"],
            "requiresCompleteness": False,
        },
    ]


def test_audit(api: httpx.Client) -> None:
    entries = api.get("/records/ent-xK9mP2vL/audit", params={"limit": 10}).json()
    assert len(entries) <= 10
    for entry in entries:
        assert set(entry) == {"id", "entityId", "userId", "timestamp", "action", "changes"}
        assert entry["id"].startswith("audit-") and entry["entityId"] == "ent-xK9mP2vL"
        for change in entry["changes"]:
            assert set(change) == {"attributeAlias", "scope", "oldValue", "newValue"}
    assert entries[0]["action"] == "transition"
    assert entries[0]["changes"] == [
        {
            "attributeAlias": "lifecycleState",
            "scope": {},
            "oldValue": "state-draft",
            "newValue": "state-review",
        }
    ]
    update = entries[1]
    assert update["action"] == "update" and update["userId"] == "user-admin"
    assert {
        "attributeAlias": "product-name",
        "scope": {},
        "oldValue": "Coastal Windbreaker",
        "newValue": "Coastal Windbreaker Pro",
    } in update["changes"]


def test_categories(api: httpx.Client) -> None:
    assert api.get("/records/ent-xK9mP2vL/categories").json() == [
        {"entityId": "ent-xK9mP2vL", "categoryId": "cat-outerwear", "sortOrder": 0},
        {"entityId": "ent-xK9mP2vL", "categoryId": "cat-spring-collection", "sortOrder": 3},
    ]


def test_delete_record(api: httpx.Client) -> None:
    response = api.delete("/records/ent-xK9mP2vL")
    assert response.status_code == 204 and response.content == b""
    gone = api.get("/records/ent-xK9mP2vL")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"
    assert api.get("/records/ent-xK9mP2vL/audit").json()[0]["action"] == "delete"


def test_no_token_is_401_on_the_live_server(server: LiveServer) -> None:
    response = httpx.get(f"{server.url}/api/v1/records")
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"
