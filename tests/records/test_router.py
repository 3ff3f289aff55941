"""Records API (seed 002): endpoints, validation, roles, completeness, transitions, audit, categories."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from skuport.auth.roles import RoleId
from skuport.catalog.models import Attribute, Schema
from skuport.db import session_scope
from tests.factories import make_user

API = "/api/v1"
WINDBREAKER = {
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


def create(client: TestClient, headers: dict[str, str], body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = client.post(f"{API}/records", json=body or WINDBREAKER, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]


# Create / get --------------------------------------------------------------------------------------


def test_create_returns_the_record_with_initial_state_and_token_user(client: TestClient, admin: dict) -> None:
    record = create(client, admin)
    assert record["id"].startswith("ent-")
    assert record["schemaId"] == "schema-apparel"
    assert record["lifecycleStateId"] == "state-draft"
    assert record["createdBy"] == record["updatedBy"] == "user-admin"
    assert record["createdAt"].endswith("Z")
    assert record["values"] == WINDBREAKER["values"]
    fetched = client.get(f"{API}/records/{record['id']}", headers=admin).json()
    assert fetched == record


def test_editor_creates_viewer_and_runner_cannot(client: TestClient, world: None) -> None:
    editor = make_user("user-ed", RoleId.EDITOR)
    assert create(client, editor)["createdBy"] == "user-ed"
    for role in (RoleId.VIEWER, RoleId.RUNNER):
        headers = make_user(f"user-{role}", role)
        error(client.post(f"{API}/records", json=WINDBREAKER, headers=headers), 403, "forbidden")
        assert client.get(f"{API}/records", headers=headers).status_code == 200


def test_auth_missing_bad_and_expired_tokens_are_401(client: TestClient, world: None) -> None:
    import datetime as dt

    from skuport.auth.tokens import create_token
    from skuport.config import Settings

    error(client.get(f"{API}/records"), 401, "unauthorized")
    error(client.get(f"{API}/records", headers={"Authorization": "Bearer nonsense"}), 401, "invalid_token")
    other = create_token(Settings(secret_key="another-key"), user_id="user-admin", ttl=dt.timedelta(hours=1))
    error(client.get(f"{API}/records", headers={"Authorization": f"Bearer {other}"}), 401, "invalid_token")
    expired = create_token(Settings(), user_id="user-admin", ttl=dt.timedelta(seconds=1))
    import time

    time.sleep(1.1)
    error(client.get(f"{API}/records", headers={"Authorization": f"Bearer {expired}"}), 401, "token_expired")


def test_token_signed_with_an_older_rotation_key_still_works(
    client: TestClient, world: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from skuport.config import get_settings
    from tests.factories import token_for

    old = token_for("user-admin")
    monkeypatch.setenv("SKUPORT_SECRET_KEY", "brand-new-key,test-secret-key-not-for-production")
    get_settings.cache_clear()
    try:
        assert client.get(f"{API}/records", headers={"Authorization": f"Bearer {old}"}).status_code == 200
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_unknown_record_is_404_with_envelope(client: TestClient, admin: dict) -> None:
    err = error(client.get(f"{API}/records/ent-nope", headers=admin), 404, "not_found")
    assert "ent-nope" in err["message"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"schemaId": "schema-nope", "values": {}}, 422, "unknown_schema"),
        (
            {"schemaId": "schema-apparel", "values": {"colour": [{"scope": {}, "value": "Red"}]}},
            422,
            "invalid_values",
        ),
        (
            {
                "schemaId": "schema-apparel",
                "values": {"sku": [{"scope": {"dim-language": "seg-da"}, "value": "A-1"}]},
            },
            422,
            "invalid_values",
        ),
        (
            {
                "schemaId": "schema-apparel",
                "values": {"price": [{"scope": {"dim-market": "seg-fr"}, "value": 1}]},
            },
            422,
            "invalid_values",
        ),
        (
            {"schemaId": "schema-apparel", "values": {"price": [{"scope": {}, "value": "cheap"}]}},
            422,
            "invalid_values",
        ),
        (
            {"schemaId": "schema-apparel", "values": {"price": [{"scope": {}, "value": -1}]}},
            422,
            "invalid_values",
        ),
        (
            {"schemaId": "schema-apparel", "values": {"color": [{"scope": {}, "value": "Pink"}]}},
            422,
            "invalid_values",
        ),
        (
            {"schemaId": "schema-apparel", "values": {"ean": [{"scope": {}, "value": "123"}]}},
            422,
            "invalid_values",
        ),
        ({"schemaId": "schema-apparel", "values": {"sku": "CW-001"}}, 422, "validation_error"),
        ({"schemaId": "schema-apparel"}, 422, "validation_error"),
        ({"schemaId": "schema-apparel", "values": {}, "extra": 1}, 422, "validation_error"),
        ({"schemaId": "schema-apparel", "values": {}, "parentId": "ent-missing"}, 422, "unknown_parent"),
    ],
)
def test_create_refuses_bad_input(
    client: TestClient, admin: dict, body: dict, status: int, code: str
) -> None:
    error(client.post(f"{API}/records", json=body, headers=admin), status, code)


def test_scope_error_names_attribute_and_scope(client: TestClient, admin: dict) -> None:
    body = {
        "schemaId": "schema-apparel",
        "values": {"price": [{"scope": {"dim-language": "seg-da"}, "value": 1}]},
    }
    err = error(client.post(f"{API}/records", json=body, headers=admin), 422, "invalid_values")
    assert err["details"] == [
        {
            "attribute": "price",
            "scope": {"dim-language": "seg-da"},
            "message": "attribute 'price' is not scoped by dimension 'dim-language' (it accepts: dim-market)",
        }
    ]


def test_malformed_json_is_400_and_huge_body_413(client: TestClient, admin: dict) -> None:
    response = client.post(
        f"{API}/records", content=b"{not json", headers={**admin, "Content-Type": "application/json"}
    )
    error(response, 400, "invalid_json")
    big = b'{"schemaId": "' + b"x" * (11 * 1024 * 1024) + b'"}'
    error(
        client.post(f"{API}/records", content=big, headers={**admin, "Content-Type": "application/json"}),
        413,
        "payload_too_large",
    )


def test_unknown_route_and_method_use_the_envelope(client: TestClient) -> None:
    error(client.get(f"{API}/nothing-here"), 404, "not_found")
    error(client.delete("/healthz"), 405, "method_not_allowed")


# Update / patch / delete ---------------------------------------------------------------------------


def test_put_replaces_only_the_named_attributes(client: TestClient, admin: dict) -> None:
    record = create(client, admin)
    prices = [
        {"scope": {}, "value": 149.99},
        {"scope": {"dim-market": "seg-dk"}, "value": 1099},
        {"scope": {"dim-market": "seg-de"}, "value": 159.99},
    ]
    updated = client.put(
        f"{API}/records/{record['id']}", json={"values": {"price": prices}}, headers=admin
    ).json()
    assert updated["values"]["price"] == prices
    assert updated["values"]["product-name"] == WINDBREAKER["values"]["product-name"]
    assert updated["updatedAt"] >= record["updatedAt"]


def test_put_with_empty_list_removes_the_attribute(client: TestClient, admin: dict) -> None:
    record = create(client, admin)
    updated = client.put(
        f"{API}/records/{record['id']}", json={"values": {"description": []}}, headers=admin
    ).json()
    assert "description" not in updated["values"]


def test_patch_replaces_one_attribute(client: TestClient, admin: dict) -> None:
    record = create(client, admin)
    names = [
        {"scope": {}, "value": "Coastal Windbreaker Pro"},
        {"scope": {"dim-language": "seg-da"}, "value": "Kyst Vindjakke Pro"},
        {"scope": {"dim-language": "seg-de"}, "value": "Kuesten Windjacke Pro"},
    ]
    response = client.patch(
        f"{API}/records/{record['id']}/values/product-name", json={"scopedValues": names}, headers=admin
    )
    assert response.status_code == 200
    assert response.json()["values"]["product-name"] == names
    assert response.json()["values"]["price"] == WINDBREAKER["values"]["price"]
    bad = client.patch(
        f"{API}/records/{record['id']}/values/unknown", json={"scopedValues": []}, headers=admin
    )
    error(bad, 422, "invalid_values")


def test_failed_update_changes_nothing(client: TestClient, admin: dict) -> None:
    record = create(client, admin)
    body = {"values": {"price": [{"scope": {}, "value": 1}], "sku": [{"scope": {}, "value": 7}]}}
    error(client.put(f"{API}/records/{record['id']}", json=body, headers=admin), 422, "invalid_values")
    assert client.get(f"{API}/records/{record['id']}", headers=admin).json() == record


def test_delete_removes_record_and_variants_and_is_audited(client: TestClient, admin: dict) -> None:
    parent = create(client, admin)
    variant = create(
        client,
        admin,
        {
            "schemaId": "schema-apparel",
            "parentId": parent["id"],
            "values": {"sku": [{"scope": {}, "value": "CW-001-M"}]},
        },
    )
    assert client.delete(f"{API}/records/{parent['id']}", headers=admin).status_code == 204
    for rid in (parent["id"], variant["id"]):
        error(client.get(f"{API}/records/{rid}", headers=admin), 404, "not_found")
        trail = client.get(f"{API}/records/{rid}/audit", headers=admin).json()
        assert trail[0]["action"] == "delete"
    error(client.delete(f"{API}/records/{parent['id']}", headers=admin), 404, "not_found")


# Variants and list ---------------------------------------------------------------------------------


def test_variants_rules_and_list_filters(client: TestClient, admin: dict) -> None:
    parent = create(client, admin)
    variant = create(
        client,
        admin,
        {
            "schemaId": "schema-apparel",
            "parentId": parent["id"],
            "values": {"sku": [{"scope": {}, "value": "CW-001-M"}]},
        },
    )
    assert variant["parentId"] == parent["id"]
    nested = {"schemaId": "schema-apparel", "parentId": variant["id"], "values": {}}
    error(client.post(f"{API}/records", json=nested, headers=admin), 422, "invalid_parent")
    only = client.get(f"{API}/records", params={"parentId": parent["id"]}, headers=admin).json()
    assert [r["id"] for r in only["items"]] == [variant["id"]]
    tops = client.get(f"{API}/records", params={"includeVariants": "false"}, headers=admin).json()
    assert [r["id"] for r in tops["items"]] == [parent["id"]]


def test_list_pagination_is_stable_with_total(client: TestClient, admin: dict) -> None:
    ids = [create(client, admin)["id"] for _ in range(5)]
    page1 = client.get(f"{API}/records", params={"limit": 2}, headers=admin).json()
    page2 = client.get(f"{API}/records", params={"limit": 2, "offset": 2}, headers=admin).json()
    assert page1["total"] == page2["total"] == 5
    assert (page1["offset"], page1["limit"]) == (0, 2)
    assert [r["id"] for r in page1["items"] + page2["items"]] == ids[:4]
    error(client.get(f"{API}/records", params={"limit": 0}, headers=admin), 422, "validation_error")
    error(client.get(f"{API}/records", params={"offset": -1}, headers=admin), 422, "validation_error")


def _values(name: str, price: float, brand: str, extra: dict | None = None) -> dict[str, Any]:
    values: dict[str, Any] = {
        "product-name": [{"scope": {}, "value": name}],
        "sku": [{"scope": {}, "value": name.upper()}],
        "price": [{"scope": {}, "value": price}],
        "brand": [{"scope": {}, "value": brand}],
    }
    values.update(extra or {})
    return {"schemaId": "schema-apparel", "values": values}


def test_list_attribute_filters_in_every_syntax(client: TestClient, admin: dict) -> None:
    a = create(
        client, admin, _values("AAA", 50, "Ma Marque", {"sizes": [{"scope": {}, "value": ["S", "M"]}]})
    )
    b = create(
        client,
        admin,
        _values(
            "BBB",
            150,
            "Ma Marque",
            {"price": [{"scope": {}, "value": 150}, {"scope": {"dim-market": "seg-dk"}, "value": 1100}]},
        ),
    )
    c = create(client, admin, _values("CCC", 600, "Other"))

    def ids(params: dict[str, Any]) -> list[str]:
        body = client.get(f"{API}/records", params=params, headers=admin)
        assert body.status_code == 200, body.text
        assert body.json()["total"] == len(body.json()["items"])
        return [r["id"] for r in body.json()["items"]]

    assert ids({"filter[brand]": "Ma Marque"}) == [a["id"], b["id"]]
    assert ids({"filter[price][gte]": "100", "filter[price][lt]": "500"}) == [b["id"]]
    assert ids({"filter[price_gt]": "500"}) == [b["id"], c["id"]]  # b has 1100 for seg-dk (any scope)
    assert ids({"filter[price][gt]": "500", "dimensionScope[dim-market]": "seg-de"}) == [c["id"]]
    assert ids({"filter[price][gt]": "500", "dimensionScope[dim-market]": "seg-dk"}) == [b["id"], c["id"]]
    assert ids({"filter[sku_eq]": "AAA"}) == [a["id"]]
    assert ids({"filter[brand][ne]": "Ma Marque"}) == [c["id"]]
    assert ids({"filter[brand][in]": "Other,Nope"}) == [c["id"]]
    assert ids({"filter[product-name][contains]": "bb"}) == [b["id"]]
    assert ids({"filter[sizes]": "M"}) == [a["id"]]
    assert ids({"filter[sizes][exists]": "false"}) == [b["id"], c["id"]]
    assert ids({"filter[lifecycleStateId]": "state-draft", "filter[brand]": "Other"}) == [c["id"]]
    assert ids({"lifecycleStateId": "state-review"}) == []
    assert ids({"schemaId": "schema-apparel", "filter[price][lte]": "50"}) == [a["id"]]


@pytest.mark.parametrize(
    "params",
    [
        {"filter[nope]": "x"},
        {"filter[price][between]": "1"},
        {"filter[price][gt]": "cheap"},
        {"filter[price]]": "1"},
        {"filter[updatedAt][gt]": "yesterday"},
        {"filter[updatedAt][contains]": "2024"},
        {"dimensionScope[a][b]": "x"},
    ],
)
def test_bad_filters_are_422(client: TestClient, admin: dict, params: dict[str, str]) -> None:
    error(client.get(f"{API}/records", params=params, headers=admin), 422, "invalid_filter")


def test_updated_since(client: TestClient, admin: dict) -> None:
    first = create(client, admin)
    second = create(client, admin)
    body = client.get(f"{API}/records", params={"updatedSince": second["updatedAt"]}, headers=admin).json()
    assert [r["id"] for r in body["items"]] == [second["id"]]
    assert first["id"] not in [r["id"] for r in body["items"]]


def test_plan_sku_limit(client: TestClient, admin: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    from skuport.config import get_settings

    create(client, admin)
    monkeypatch.setenv("SKUPORT_PLAN_SKU_LIMIT", "1")
    get_settings.cache_clear()
    try:
        err = error(client.post(f"{API}/records", json=WINDBREAKER, headers=admin), 409, "plan_limit_reached")
        assert "1 records" in err["message"]
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    create(client, admin)


# Completeness --------------------------------------------------------------------------------------


def _full_values() -> dict[str, Any]:
    langs = ("seg-en", "seg-da", "seg-de")
    return {
        "product-name": [{"scope": {"dim-language": s}, "value": f"Name {s}"} for s in langs],
        "sku": [{"scope": {}, "value": "CW-002"}],
        "price": [{"scope": {"dim-market": m}, "value": 10} for m in ("seg-dk", "seg-de")],
        "description": [{"scope": {"dim-language": s}, "value": f"Desc {s}"} for s in langs],
        "material": [{"scope": {}, "value": "Nylon"}],
    }


def test_completeness_counts_each_required_attribute_per_segment_combination(
    client: TestClient, admin: dict
) -> None:
    record = create(client, admin)
    body = client.get(f"{API}/records/{record['id']}/completeness", headers=admin).json()
    # state-draft: product-name x 3 languages (da, de filled), sku, price x 2 markets (dk filled).
    assert body == {
        "entityId": record["id"],
        "lifecycleStateId": "state-draft",
        "filled": 4,
        "total": 6,
        "percentage": 66,
        "missing": [
            {"attributeAlias": "product-name", "scope": {"dim-language": "seg-en"}},
            {"attributeAlias": "price", "scope": {"dim-market": "seg-de"}},
        ],
    }


def test_completeness_follows_the_state_required_attributes(client: TestClient, admin: dict) -> None:
    record = create(client, admin)
    body = client.get(
        f"{API}/records/{record['id']}/completeness",
        params={"lifecycleStateId": "state-published"},
        headers=admin,
    ).json()
    assert body["total"] == 6 + 3 + 1
    assert {"attributeAlias": "material", "scope": {}} in body["missing"]
    assert {"attributeAlias": "description", "scope": {"dim-language": "seg-de"}} in body["missing"]
    error(
        client.get(
            f"{API}/records/{record['id']}/completeness",
            params={"lifecycleStateId": "state-x"},
            headers=admin,
        ),
        422,
        "unknown_state",
    )


def test_completeness_ignores_attributes_hidden_by_a_guard(client: TestClient, admin: dict) -> None:
    record = create(client, admin, {"schemaId": "schema-apparel", "values": _full_values()})
    url = f"{API}/records/{record['id']}/completeness"
    assert client.get(url, headers=admin).json()["percentage"] == 100
    client.patch(
        f"{API}/records/{record['id']}/values/has-hood",
        json={"scopedValues": [{"scope": {}, "value": True}]},
        headers=admin,
    )
    body = client.get(url, headers=admin).json()
    assert body["missing"] == [{"attributeAlias": "hood-type", "scope": {}}]
    assert (body["filled"], body["total"], body["percentage"]) == (6, 7, 85)
    client.patch(
        f"{API}/records/{record['id']}/values/hood-type",
        json={"scopedValues": [{"scope": {}, "value": "packable"}]},
        headers=admin,
    )
    assert client.get(url, headers=admin).json()["percentage"] == 100


def test_completeness_with_no_required_attributes_is_100(client: TestClient, admin: dict) -> None:
    with session_scope() as session:
        session.add(
            Schema(
                id="schema-free",
                name="Free",
                attributes=[Attribute(id="attr-free-note", alias="note", name="Note", data_type="text")],
            )
        )
    record = create(client, admin, {"schemaId": "schema-free", "values": {}})
    body = client.get(f"{API}/records/{record['id']}/completeness", headers=admin).json()
    assert (body["filled"], body["total"], body["percentage"], body["lifecycleStateId"]) == (0, 0, 100, None)


# Transitions ---------------------------------------------------------------------------------------


def test_transitions_listed_from_the_current_state(client: TestClient, admin: dict) -> None:
    record = create(client, admin)
    listed = client.get(f"{API}/records/{record['id']}/transitions", headers=admin).json()
    assert listed == [
        {
            "id": "trans-draft-to-review",
            "fromStateId": "state-draft",
            "toStateId": "state-review",
            "name": "Submit for review",
            "allowedRoleIds": ["role-admin", "role-editor"],
            "requiresCompleteness": False,
        }
    ]


def test_transition_gates(client: TestClient, admin: dict) -> None:
    record = create(client, admin)
    url = f"{API}/records/{record['id']}/transition"
    error(
        client.post(url, json={"transitionId": "trans-review-to-published"}, headers=admin),
        409,
        "invalid_transition",
    )
    error(client.post(url, json={"transitionId": "trans-nope"}, headers=admin), 422, "unknown_transition")
    viewer = make_user("user-v", RoleId.VIEWER)
    error(client.post(url, json={"transitionId": "trans-draft-to-review"}, headers=viewer), 403, "forbidden")
    moved = client.post(url, json={"transitionId": "trans-draft-to-review"}, headers=admin).json()
    assert moved["lifecycleStateId"] == "state-review"
    # Publishing requires 100 % completeness for state-published: 409 with the missing list.
    err = error(
        client.post(url, json={"transitionId": "trans-review-to-published"}, headers=admin), 409, "incomplete"
    )
    assert {"attributeAlias": "material", "scope": {}} in err["details"]
    # Editors may not send back to draft (admin only).
    editor = make_user("user-e", RoleId.EDITOR)
    error(client.post(url, json={"transitionId": "trans-review-to-draft"}, headers=editor), 403, "forbidden")


def test_complete_record_can_be_published(client: TestClient, admin: dict) -> None:
    record = create(client, admin, {"schemaId": "schema-apparel", "values": _full_values()})
    url = f"{API}/records/{record['id']}/transition"
    client.post(url, json={"transitionId": "trans-draft-to-review"}, headers=admin)
    published = client.post(url, json={"transitionId": "trans-review-to-published"}, headers=admin)
    assert published.status_code == 200 and published.json()["lifecycleStateId"] == "state-published"
    assert (
        client.get(f"{API}/records", params={"lifecycleStateId": "state-published"}, headers=admin).json()[
            "total"
        ]
        == 1
    )


# Audit ---------------------------------------------------------------------------------------------


def test_audit_trail_newest_first_with_exact_changes(client: TestClient, admin: dict) -> None:
    record = create(client, admin)
    rid = record["id"]
    client.patch(
        f"{API}/records/{rid}/values/product-name",
        json={
            "scopedValues": [
                {"scope": {}, "value": "Coastal Windbreaker Pro"},
                {"scope": {"dim-language": "seg-da"}, "value": "Kyst Vindjakke"},
            ]
        },
        headers=admin,
    )
    client.post(
        f"{API}/records/{rid}/transition", json={"transitionId": "trans-draft-to-review"}, headers=admin
    )
    trail = client.get(f"{API}/records/{rid}/audit", headers=admin).json()
    assert [e["action"] for e in trail] == ["transition", "update", "create"]
    assert all(
        e["entityId"] == rid and e["userId"] == "user-admin" and e["id"].startswith("audit-") for e in trail
    )
    assert trail[0]["changes"] == [
        {
            "attributeAlias": "lifecycleState",
            "scope": {},
            "oldValue": "state-draft",
            "newValue": "state-review",
        }
    ]
    assert trail[1]["changes"] == [
        {
            "attributeAlias": "product-name",
            "scope": {},
            "oldValue": "Coastal Windbreaker",
            "newValue": "Coastal Windbreaker Pro",
        },
        {
            "attributeAlias": "product-name",
            "scope": {"dim-language": "seg-de"},
            "oldValue": "Kuesten Windjacke",
            "newValue": None,
        },
    ]
    created = trail[2]["changes"]
    assert {
        "attributeAlias": "price",
        "scope": {"dim-market": "seg-dk"},
        "oldValue": None,
        "newValue": 969,
    } in created
    assert len(created) == 8
    limited = client.get(f"{API}/records/{rid}/audit", params={"limit": 1}, headers=admin).json()
    assert [e["action"] for e in limited] == ["transition"]


def test_no_op_update_writes_no_audit_entry(client: TestClient, admin: dict) -> None:
    record = create(client, admin)
    client.put(
        f"{API}/records/{record['id']}",
        json={"values": {"sku": [{"scope": {}, "value": "CW-001"}]}},
        headers=admin,
    )
    assert len(client.get(f"{API}/records/{record['id']}/audit", headers=admin).json()) == 1


# Categories ----------------------------------------------------------------------------------------


def test_category_assignment_round_trip(client: TestClient, admin: dict) -> None:
    rid = create(client, admin)["id"]
    url = f"{API}/records/{rid}/categories"
    assert (
        client.post(
            url, json={"categoryId": "cat-spring-collection", "sortOrder": 3}, headers=admin
        ).status_code
        == 201
    )
    assert (
        client.post(url, json={"categoryId": "cat-outerwear", "sortOrder": 0}, headers=admin).status_code
        == 201
    )
    assert client.get(url, headers=admin).json() == [
        {"entityId": rid, "categoryId": "cat-outerwear", "sortOrder": 0},
        {"entityId": rid, "categoryId": "cat-spring-collection", "sortOrder": 3},
    ]
    moved = client.put(f"{url}/cat-outerwear", json={"sortOrder": 9}, headers=admin).json()
    assert moved["sortOrder"] == 9
    assert client.delete(f"{url}/cat-outerwear", headers=admin).status_code == 204
    assert [a["categoryId"] for a in client.get(url, headers=admin).json()] == ["cat-spring-collection"]
    error(client.delete(f"{url}/cat-outerwear", headers=admin), 404, "not_found")
    error(client.post(url, json={"categoryId": "cat-nope"}, headers=admin), 422, "unknown_category")
    trail = client.get(f"{API}/records/{rid}/audit", headers=admin).json()
    assert trail[0]["changes"][0]["attributeAlias"] == "categories"


def test_nul_characters_are_refused_not_500(client: TestClient, admin: dict) -> None:
    error(client.get(f"{API}/records/ent-x%00y", headers=admin), 400, "invalid_characters")
    error(
        client.get(f"{API}/records", params={"schemaId": "a\x00b"}, headers=admin), 400, "invalid_characters"
    )
    body = {"schemaId": "schema-apparel", "values": {"brand": [{"scope": {}, "value": "AB\u0000C"}]}}
    err = error(client.post(f"{API}/records", json=body, headers=admin), 422, "invalid_values")
    assert "NUL" in err["message"]
    # SQLite finds no such schema, PostgreSQL refuses the NUL: a 422 either way, never a 500.
    nul_id = client.post(f"{API}/records", json={"schemaId": "x\u0000", "values": {}}, headers=admin)
    assert nul_id.status_code == 422 and nul_id.json()["error"]["code"] in (
        "unknown_schema",
        "invalid_characters",
    )
    assert client.get(f"{API}/records", headers=admin).json()["total"] == 0


def test_both_stored_forms_stay_in_step(client: TestClient, admin: dict) -> None:
    import orjson

    from skuport.records.models import Record
    from skuport.records.values import cells_of

    rid = create(client, admin)["id"]
    client.patch(
        f"{API}/records/{rid}/values/price", json={"scopedValues": [{"scope": {}, "value": 5}]}, headers=admin
    )
    client.put(f"{API}/records/{rid}", json={"values": {"description": []}}, headers=admin)
    with session_scope() as session:
        record = session.query(Record).filter_by(id=rid).one()
        values = orjson.loads(record.values_json)
        assert orjson.loads(record.cells_json) == cells_of(values)
        assert orjson.loads(record.cells_json)["price"] == {"@": 5}
        assert "description" not in orjson.loads(record.cells_json)


@pytest.mark.parametrize("price", [2**63, -(2**63) - 1, 2**70])
def test_a_number_beyond_64_bits_is_a_422_naming_the_attribute(
    client: TestClient, admin: dict, price: int
) -> None:
    body = {**WINDBREAKER, "values": {**WINDBREAKER["values"], "price": [{"scope": {}, "value": price}]}}
    refused = error(client.post(f"{API}/records", json=body, headers=admin), 422, "invalid_values")
    assert "price" in str(refused) and "64-bit" in refused["message"] + str(refused["details"])
    record = create(client, admin)
    patched = client.patch(
        f"{API}/records/{record['id']}/values/price",
        headers=admin,
        json={"scopedValues": [{"scope": {}, "value": price}]},
    )
    assert patched.status_code == 422 and "price" in patched.text
    kept = client.get(f"{API}/records/{record['id']}", headers=admin).json()
    assert kept["values"]["price"] == WINDBREAKER["values"]["price"]  # nothing stored


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("dimensionScope[dim-nope]=seg-da", "dimensionScope.dim-nope"),
        ("dimensionScope[dim-language]=seg-nope", "dimensionScope.dim-language"),
        ("updatedSince=0.5", "updatedSince"),
        ("updatedSince=1700000000", "updatedSince"),
        ("updatedSince=yesterday", "updatedSince"),
    ],
)
def test_a_listing_never_silently_ignores_what_it_cannot_read(
    client: TestClient, admin: dict, query: str, field: str
) -> None:
    refused = error(client.get(f"{API}/records?{query}", headers=admin), 422, "invalid_filter")
    assert field in {d.get("field") for d in refused["details"]}


def test_updated_since_reads_iso_times_with_or_without_offset(client: TestClient, admin: dict) -> None:
    create(client, admin)
    for value in ("2000-01-01T00:00:00Z", "2000-01-01T00:00:00", "2000-01-01T01:00:00%2B01:00", "2000-01-01"):
        listed = client.get(f"{API}/records?updatedSince={value}", headers=admin)
        assert listed.status_code == 200 and listed.json()["total"] == 1, value
    assert client.get(f"{API}/records?updatedSince=2999-01-01T00:00:00Z", headers=admin).json()["total"] == 0


def test_unknown_query_parameters_are_refused_by_name(client: TestClient, admin: dict) -> None:
    # a typo must never be ignored: ?brand=… (not filter[brand]) would list the whole catalogue
    response = client.get(f"{API}/records", headers=admin, params={"brand": "Ma Marque", "limt": 5})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "unknown_parameter" and error["details"] == [
        {"parameter": "brand"},
        {"parameter": "limt"},
    ]
    assert "brand, limt" in error["message"] and "filter[…]" in error["message"]
    # what the operation declares passes: plain parameters and its deep objects
    ok = client.get(
        f"{API}/records",
        headers=admin,
        params={"limit": 5, "filter[brand]": "Ma Marque", "dimensionScope[dim-market]": "seg-dk"},
    )
    assert ok.status_code == 200, ok.text
    jobs = f"{API}/export-jobs"
    assert client.get(jobs, headers=admin, params={"filter[active]": "true"}).status_code == 200
    assert client.get(jobs, headers=admin, params={"active": "true"}).status_code == 400
    assert client.get(f"{API}/schemas", headers=admin, params={"x": "1"}).json()["error"]["details"] == [
        {"parameter": "x"}
    ]
    # the vendor dialects refuse them in their own error shapes
    response = client.get("/compat/commercelayer/api/exports", headers=admin, params={"page[nmber]": 2})
    assert response.status_code == 400 and response.json()["errors"][0]["code"] == "BAD_REQUEST"
    assert "page[nmber]" in response.json()["errors"][0]["detail"]


def test_a_wrong_method_is_405_with_every_allowed_method(client: TestClient, admin: dict) -> None:
    # Starlette alone names only the first route of the path (POST) and forgets GET
    response = client.delete(f"{API}/records", headers=admin)
    assert response.status_code == 405 and response.headers["allow"] == "GET, HEAD, POST"
    assert response.json()["error"]["details"] == [{"allow": ["GET", "HEAD", "POST"]}]
    response = client.patch(f"{API}/export-jobs/expjob-x", headers=admin)
    assert response.headers["allow"] == "DELETE, GET, HEAD, PUT"
    assert "PATCH is not allowed here" in response.json()["error"]["message"]
