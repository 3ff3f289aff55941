"""Catalogue model endpoints, through HTTP, on the seed world."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.catalog.helpers import add_record, assignment_count
from tests.factories import make_user

API = "/api/v1"
Headers = dict[str, str]


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    return body["error"]


def _attr(alias: str, data_type: str = "text", **extra: Any) -> dict[str, Any]:
    return {"alias": alias, "name": alias.title(), "dataType": data_type, **extra}


@pytest.fixture
def viewer(world: None) -> Headers:
    """Headers of a read-only user."""
    return make_user("user-reader", "role-viewer")


# Role gates

READS = [
    "/dimensions",
    "/dimensions/dim-language",
    "/workflows",
    "/workflows/wf-apparel",
    "/schemas",
    "/schemas/schema-apparel",
    "/schemas/schema-apparel/attributes/sku",
    "/catalogs",
    "/catalogs/catalog-webshop",
    "/catalogs/catalog-webshop/categories",
    "/categories/cat-apparel",
]
WRITES = [
    ("post", "/dimensions", {"name": "Channel"}),
    ("put", "/dimensions/dim-language", {"name": "Lang"}),
    ("delete", "/dimensions/dim-language", None),
    ("post", "/workflows", {"name": "W", "states": [{"id": "state-x", "name": "X"}]}),
    ("put", "/workflows/wf-apparel", {"name": "W"}),
    ("delete", "/workflows/wf-apparel", None),
    ("post", "/schemas", {"name": "S"}),
    ("put", "/schemas/schema-apparel", {"name": "S"}),
    ("delete", "/schemas/schema-apparel", None),
    ("post", "/schemas/schema-apparel/attributes", _attr("extra")),
    ("put", "/schemas/schema-apparel/attributes/sku", {"name": "S"}),
    ("delete", "/schemas/schema-apparel/attributes/brand", None),
    ("post", "/catalogs", {"name": "C"}),
    ("put", "/catalogs/catalog-webshop", {"name": "C"}),
    ("delete", "/catalogs/catalog-webshop", None),
    ("post", "/catalogs/catalog-webshop/categories", {"name": "C"}),
    ("put", "/categories/cat-apparel", {"name": "C"}),
    ("delete", "/categories/cat-apparel", None),
]


def test_reads_need_a_token(client: TestClient, world: None) -> None:
    for path in READS:
        _error(client.get(API + path), 401, "unauthorized")


def test_any_user_may_read(client: TestClient, viewer: Headers) -> None:
    for path in READS:
        assert client.get(API + path, headers=viewer).status_code == 200, path


def test_writes_need_the_admin_role(client: TestClient, viewer: Headers) -> None:
    editor = make_user("user-writer", "role-editor")
    for method, path, body in WRITES:
        for headers in (viewer, editor):
            _error(client.request(method, API + path, json=body, headers=headers), 403, "forbidden")
        _error(client.request(method, API + path, json=body), 401, "unauthorized")
    # Nothing changed.
    assert client.get(API + "/dimensions/dim-language", headers=viewer).json()["name"] == "Language"
    assert client.get(API + "/workflows/wf-apparel", headers=viewer).json()["name"] == "Apparel lifecycle"
    assert client.get(API + "/schemas/schema-apparel/attributes/brand", headers=viewer).status_code == 200
    assert client.get(API + "/categories/cat-apparel", headers=viewer).status_code == 200
    assert [c["id"] for c in client.get(API + "/catalogs", headers=viewer).json()] == ["catalog-webshop"]


# Dimensions


def test_list_dimensions_in_order(client: TestClient, admin: Headers) -> None:
    body = client.get(API + "/dimensions", headers=admin).json()
    assert [d["id"] for d in body] == ["dim-language", "dim-market"]
    assert body[0]["segments"] == [
        {"id": "seg-en", "name": "English", "sortOrder": 0},
        {"id": "seg-da", "name": "Danish", "sortOrder": 1},
        {"id": "seg-de", "name": "German", "sortOrder": 2},
    ]


def test_create_get_update_delete_dimension(client: TestClient, admin: Headers) -> None:
    created = client.post(
        API + "/dimensions",
        headers=admin,
        json={
            "id": "dim-channel",
            "name": "Channel",
            "segments": [
                {"id": "seg-web", "name": "Web"},
                {"id": "seg-print", "name": "Print", "sortOrder": 0},
            ],
        },
    )
    assert created.status_code == 201, created.text
    assert created.json() == {
        "id": "dim-channel",
        "name": "Channel",
        "sortOrder": 2,
        "segments": [
            {"id": "seg-print", "name": "Print", "sortOrder": 0},
            {"id": "seg-web", "name": "Web", "sortOrder": 0},
        ],
    }
    assert client.get(API + "/dimensions/dim-channel", headers=admin).json() == created.json()

    updated = client.put(
        API + "/dimensions/dim-channel",
        headers=admin,
        json={
            "name": "Sales channel",
            "segments": [{"id": "seg-web", "name": "Webshop"}, {"id": "seg-app", "name": "App"}],
        },
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["name"] == "Sales channel"
    assert updated.json()["segments"] == [
        {"id": "seg-web", "name": "Webshop", "sortOrder": 0},
        {"id": "seg-app", "name": "App", "sortOrder": 1},
    ]
    # Fields not given stay.
    kept = client.put(API + "/dimensions/dim-channel", headers=admin, json={"sortOrder": 7}).json()
    assert kept["name"] == "Sales channel" and len(kept["segments"]) == 2 and kept["sortOrder"] == 7

    assert client.delete(API + "/dimensions/dim-channel", headers=admin).status_code == 204
    _error(client.get(API + "/dimensions/dim-channel", headers=admin), 404, "not_found")


def test_dimension_id_is_generated_when_absent(client: TestClient, admin: Headers) -> None:
    created = client.post(API + "/dimensions", headers=admin, json={"name": "Channel"})
    assert created.status_code == 201
    assert created.json()["id"].startswith("dim-")
    assert created.json()["segments"] == []


def test_duplicate_dimension_is_409(client: TestClient, admin: Headers) -> None:
    error = _error(
        client.post(API + "/dimensions", headers=admin, json={"id": "dim-language", "name": "L"}),
        409,
        "already_exists",
    )
    assert "dim-language" in error["message"]


def test_dimension_id_needs_its_prefix(client: TestClient, admin: Headers) -> None:
    _error(
        client.post(API + "/dimensions", headers=admin, json={"id": "language", "name": "L"}),
        422,
        "validation_error",
    )
    _error(
        client.post(
            API + "/dimensions", headers=admin, json={"name": "L", "segments": [{"id": "dk", "name": "DK"}]}
        ),
        422,
        "validation_error",
    )


def test_segment_listed_twice_is_422(client: TestClient, admin: Headers) -> None:
    _error(
        client.post(
            API + "/dimensions",
            headers=admin,
            json={"name": "L", "segments": [{"id": "seg-a", "name": "A"}, {"id": "seg-a", "name": "B"}]},
        ),
        422,
        "duplicate_id",
    )


def test_unknown_dimension_is_404(client: TestClient, admin: Headers) -> None:
    for method in ("get", "put", "delete"):
        body = {"name": "x"} if method == "put" else None
        _error(
            client.request(method, API + "/dimensions/dim-nope", headers=admin, json=body), 404, "not_found"
        )


def test_removing_a_segment_values_use_is_409(client: TestClient, admin: Headers) -> None:
    add_record("schema-apparel", [("product-name", "dim-language=seg-da", "Kyst Vindjakke")])
    error = _error(
        client.put(
            API + "/dimensions/dim-language",
            headers=admin,
            json={"segments": [{"id": "seg-en", "name": "English"}, {"id": "seg-de", "name": "German"}]},
        ),
        409,
        "in_use",
    )
    assert "seg-da" in error["message"] and "schema-apparel.product-name" in error["message"]
    assert error["details"][0]["attribute"] == "product-name"
    # seg-de of the *market* is unused, even though the language seg-de is not.
    add_record("schema-apparel", [("product-name", "dim-language=seg-de", "Windjacke")])
    ok = client.put(
        API + "/dimensions/dim-market",
        headers=admin,
        json={"segments": [{"id": "seg-dk", "name": "Denmark"}]},
    )
    assert ok.status_code == 200, ok.text


def test_segment_in_a_multi_dimension_scope_is_found(client: TestClient, admin: Headers) -> None:
    add_record("schema-apparel", [("in-stock", "dim-language=seg-da&dim-market=seg-dk", "true")])
    _error(
        client.put(
            API + "/dimensions/dim-market",
            headers=admin,
            json={"segments": [{"id": "seg-de", "name": "Germany"}]},
        ),
        409,
        "in_use",
    )
    _error(
        client.put(
            API + "/dimensions/dim-language",
            headers=admin,
            json={"segments": [{"id": "seg-en", "name": "English"}]},
        ),
        409,
        "in_use",
    )


def test_deleting_a_dimension_attributes_use_is_409(client: TestClient, admin: Headers) -> None:
    error = _error(client.delete(API + "/dimensions/dim-language", headers=admin), 409, "in_use")
    assert "schema-apparel.product-name" in error["message"]
    assert {"schemaId": "schema-apparel", "attribute": "description"} in error["details"]


def test_deleting_a_dimension_values_use_is_409(client: TestClient, admin: Headers) -> None:
    client.post(
        API + "/dimensions",
        headers=admin,
        json={"id": "dim-channel", "name": "Channel", "segments": [{"id": "seg-web", "name": "Web"}]},
    )
    add_record("schema-apparel", [("sku", "dim-channel=seg-web", "CW-1")])
    error = _error(client.delete(API + "/dimensions/dim-channel", headers=admin), 409, "in_use")
    assert "schema-apparel.sku" in error["message"]


# Workflows

SEED_PUBLISH = {
    "id": "trans-review-to-published",
    "fromStateId": "state-review",
    "toStateId": "state-published",
    "name": "Publish",
    "allowedRoleIds": ["role-admin", "role-editor"],
    "requiresCompleteness": True,
}


def _workflow(**extra: Any) -> dict[str, Any]:
    return {
        "id": "wf-simple",
        "name": "Simple",
        "states": [
            {"id": "state-new", "name": "New"},
            {"id": "state-live", "name": "Live", "requiredAttributes": ["sku"]},
        ],
        "transitions": [
            {
                "id": "trans-go-live",
                "fromStateId": "state-new",
                "toStateId": "state-live",
                "name": "Go live",
                "allowedRoleIds": ["role-admin"],
                "requiresCompleteness": True,
            }
        ],
        **extra,
    }


def test_workflow_transitions_have_the_seed_shape(client: TestClient, admin: Headers) -> None:
    body = client.get(API + "/workflows/wf-apparel", headers=admin).json()
    assert SEED_PUBLISH in body["transitions"]
    assert all(set(t) == set(SEED_PUBLISH) for t in body["transitions"])
    assert [s["id"] for s in body["states"]] == ["state-draft", "state-review", "state-published"]
    assert [s["isInitial"] for s in body["states"]] == [True, False, False]
    assert [w["id"] for w in client.get(API + "/workflows", headers=admin).json()] == ["wf-apparel"]


def test_create_workflow_first_state_is_initial_by_default(client: TestClient, admin: Headers) -> None:
    created = client.post(API + "/workflows", headers=admin, json=_workflow())
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["states"] == [
        {"id": "state-new", "name": "New", "isInitial": True, "requiredAttributes": []},
        {"id": "state-live", "name": "Live", "isInitial": False, "requiredAttributes": ["sku"]},
    ]
    assert body["transitions"] == [
        {
            "id": "trans-go-live",
            "fromStateId": "state-new",
            "toStateId": "state-live",
            "name": "Go live",
            "allowedRoleIds": ["role-admin"],
            "requiresCompleteness": True,
        }
    ]
    assert client.get(API + "/workflows/wf-simple", headers=admin).json() == body


def test_flagged_initial_state_is_kept(client: TestClient, admin: Headers) -> None:
    data = _workflow()
    data["states"][1]["isInitial"] = True
    states = client.post(API + "/workflows", headers=admin, json=data).json()["states"]
    assert [s["isInitial"] for s in states] == [False, True]


def test_two_initial_states_are_422(client: TestClient, admin: Headers) -> None:
    data = _workflow()
    for state in data["states"]:
        state["isInitial"] = True
    _error(client.post(API + "/workflows", headers=admin, json=data), 422, "multiple_initial_states")


def test_transition_to_a_foreign_state_is_422(client: TestClient, admin: Headers) -> None:
    data = _workflow()
    data["transitions"][0]["toStateId"] = "state-published"  # wf-apparel's
    error = _error(client.post(API + "/workflows", headers=admin, json=data), 422, "unknown_state")
    assert "state-published" in error["message"]


def test_unknown_role_is_422(client: TestClient, admin: Headers) -> None:
    data = _workflow()
    data["transitions"][0]["allowedRoleIds"] = ["role-admin", "role-wizard"]
    error = _error(client.post(API + "/workflows", headers=admin, json=data), 422, "unknown_role")
    assert "role-wizard" in error["message"]


def test_state_listed_twice_is_422(client: TestClient, admin: Headers) -> None:
    data = _workflow()
    data["states"][1]["id"] = "state-new"
    _error(client.post(API + "/workflows", headers=admin, json=data), 422, "duplicate_id")


def test_state_of_another_workflow_is_409(client: TestClient, admin: Headers) -> None:
    data = _workflow()
    data["states"][0]["id"] = "state-draft"
    data["transitions"][0]["fromStateId"] = "state-draft"
    _error(client.post(API + "/workflows", headers=admin, json=data), 409, "already_exists")


def test_duplicate_workflow_is_409(client: TestClient, admin: Headers) -> None:
    _error(
        client.post(API + "/workflows", headers=admin, json=_workflow(id="wf-apparel")), 409, "already_exists"
    )


def test_workflow_needs_a_state(client: TestClient, admin: Headers) -> None:
    _error(
        client.post(API + "/workflows", headers=admin, json=_workflow(states=[], transitions=[])),
        422,
        "validation_error",
    )


def test_transition_id_is_generated(client: TestClient, admin: Headers) -> None:
    data = _workflow()
    del data["transitions"][0]["id"]
    body = client.post(API + "/workflows", headers=admin, json=data).json()
    assert body["transitions"][0]["id"].startswith("trans-")


def test_update_workflow(client: TestClient, admin: Headers) -> None:
    client.post(API + "/workflows", headers=admin, json=_workflow())
    renamed = client.put(API + "/workflows/wf-simple", headers=admin, json={"name": "Renamed"}).json()
    assert renamed["name"] == "Renamed" and len(renamed["states"]) == 2 and len(renamed["transitions"]) == 1
    # Dropping a state a kept transition uses is refused.
    _error(
        client.put(
            API + "/workflows/wf-simple", headers=admin, json={"states": [{"id": "state-new", "name": "New"}]}
        ),
        422,
        "unknown_state",
    )
    replaced = client.put(
        API + "/workflows/wf-simple",
        headers=admin,
        json={
            "states": [{"id": "state-new", "name": "Fresh"}, {"id": "state-gone", "name": "Gone"}],
            "transitions": [
                {
                    "id": "trans-retire",
                    "fromStateId": "state-new",
                    "toStateId": "state-gone",
                    "name": "Retire",
                    "allowedRoleIds": [],
                }
            ],
        },
    )
    assert replaced.status_code == 200, replaced.text
    assert [s["id"] for s in replaced.json()["states"]] == ["state-new", "state-gone"]
    assert replaced.json()["states"][0]["name"] == "Fresh"
    assert [t["id"] for t in replaced.json()["transitions"]] == ["trans-retire"]
    # The removed state and transition ids are free again.
    again = client.post(API + "/workflows", headers=admin, json=_workflow(id="wf-other"))
    assert again.status_code == 409  # state-new is still wf-simple's
    data = _workflow(id="wf-other")
    data["states"][0]["id"] = "state-first"
    data["transitions"][0]["fromStateId"] = "state-first"
    assert client.post(API + "/workflows", headers=admin, json=data).status_code == 201


def test_removing_a_state_records_are_in_is_409(client: TestClient, admin: Headers) -> None:
    add_record("schema-apparel", [], state="state-review")
    error = _error(
        client.put(
            API + "/workflows/wf-apparel",
            headers=admin,
            json={
                "states": [
                    {"id": "state-draft", "name": "Draft"},
                    {"id": "state-published", "name": "Published"},
                ],
                "transitions": [],
            },
        ),
        409,
        "in_use",
    )
    assert "state-review" in error["message"]


def test_deleting_a_workflow_a_schema_uses_is_409(client: TestClient, admin: Headers) -> None:
    error = _error(client.delete(API + "/workflows/wf-apparel", headers=admin), 409, "in_use")
    assert "schema-apparel" in error["message"]
    client.post(API + "/workflows", headers=admin, json=_workflow())
    assert client.delete(API + "/workflows/wf-simple", headers=admin).status_code == 204
    _error(client.get(API + "/workflows/wf-simple", headers=admin), 404, "not_found")


# Schemas

ALL_TYPES = [
    _attr(
        "title",
        "text",
        required=True,
        dimensionIds=["dim-language"],
        labels={"seg-en": "Title", "seg-da": "Titel"},
        validation={"minLength": 1, "maxLength": 80, "pattern": "[A-Za-z ]+"},
    ),
    _attr("body", "textarea", validation={"maxLength": 5000}),
    _attr("price", "number", dimensionIds=["dim-market"], validation={"min": 0, "max": 99999.5}),
    _attr("weight", "integer", validation={"min": 0}),
    _attr("fragile", "boolean"),
    _attr("launch", "date"),
    _attr("colour", "select", validation={"options": ["red", "blue"]}),
    _attr(
        "sizes",
        "multiselect",
        validation={"options": ["s", "m"]},
        guard={"attributeAlias": "fragile", "value": False},
    ),
    _attr("link", "url", validation={"maxLength": 300}),
]


def _schema(**extra: Any) -> dict[str, Any]:
    return {
        "id": "schema-gadget",
        "name": "Gadget",
        "workflowId": "wf-apparel",
        "attributes": ALL_TYPES,
        **extra,
    }


def _post_schema(client: TestClient, admin: Headers, attributes: list[dict[str, Any]]) -> Any:
    return client.post(API + "/schemas", headers=admin, json=_schema(attributes=attributes))


def test_get_seed_schema(client: TestClient, admin: Headers) -> None:
    body = client.get(API + "/schemas/schema-apparel", headers=admin).json()
    assert body["workflowId"] == "wf-apparel"
    aliases = [a["alias"] for a in body["attributes"]]
    assert aliases[:3] == ["product-name", "sku", "price"]
    hood = next(a for a in body["attributes"] if a["alias"] == "hood-type")
    assert hood["guard"] == {"attributeAlias": "has-hood", "value": True}
    assert hood["validation"] == {"options": ["fixed", "detachable", "packable"]}
    assert body["createdAt"].endswith("Z")
    sku = client.get(API + "/schemas/schema-apparel/attributes/sku", headers=admin).json()
    assert sku["validation"] == {"pattern": "[A-Z0-9-]{3,40}"}
    _error(client.get(API + "/schemas/schema-apparel/attributes/nope", headers=admin), 404, "not_found")
    _error(client.get(API + "/schemas/schema-nope", headers=admin), 404, "not_found")


def test_create_schema_with_every_data_type(client: TestClient, admin: Headers) -> None:
    created = client.post(API + "/schemas", headers=admin, json=_schema(description="Small electronics"))
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["id"] == "schema-gadget" and body["description"] == "Small electronics"
    assert [a["alias"] for a in body["attributes"]] == [a["alias"] for a in ALL_TYPES]
    title = body["attributes"][0]
    assert title == {
        "alias": "title",
        "name": "Title",
        "labels": {"seg-en": "Title", "seg-da": "Titel"},
        "dataType": "text",
        "required": True,
        "dimensionIds": ["dim-language"],
        "validation": {"minLength": 1, "maxLength": 80, "pattern": "[A-Za-z ]+"},
        "guard": None,
        "sortOrder": 0,
        "optionLabels": {},
    }
    assert body["attributes"][2]["validation"] == {"min": 0, "max": 99999.5}
    assert body["attributes"][7]["guard"] == {"attributeAlias": "fragile", "value": False}
    assert client.get(API + "/schemas/schema-gadget", headers=admin).json() == body
    listed = client.get(API + "/schemas", headers=admin).json()
    assert [s["id"] for s in listed] == ["schema-apparel", "schema-gadget"]


def test_schema_id_is_generated(client: TestClient, admin: Headers) -> None:
    created = client.post(API + "/schemas", headers=admin, json={"name": "Bare"})
    assert created.status_code == 201
    assert created.json()["id"].startswith("schema-") and created.json()["attributes"] == []
    assert created.json()["workflowId"] is None


def test_duplicate_schema_is_409(client: TestClient, admin: Headers) -> None:
    _error(
        client.post(API + "/schemas", headers=admin, json={"id": "schema-apparel", "name": "A"}),
        409,
        "already_exists",
    )


def test_unknown_workflow_is_422(client: TestClient, admin: Headers) -> None:
    _error(
        client.post(API + "/schemas", headers=admin, json=_schema(workflowId="wf-nope")),
        422,
        "unknown_workflow",
    )


@pytest.mark.parametrize(
    ("attribute", "code"),
    [
        (_attr("name", "text", validation={"min": 1}), "invalid_rule"),
        (_attr("count", "integer", validation={"maxLength": 3}), "invalid_rule"),
        (_attr("link", "url", validation={"pattern": "x"}), "invalid_rule"),
        (_attr("name", "text", validation={"options": ["a"]}), "invalid_rule"),
        (_attr("flag", "boolean", validation={"min": 0}), "invalid_rule"),
        (_attr("day", "date", validation={"maxLength": 10}), "invalid_rule"),
        (_attr("colour", "select", validation={"options": ["a"], "maxLength": 3}), "invalid_rule"),
        (_attr("count", "number", validation={"min": 5, "max": 1}), "invalid_rule"),
        (_attr("name", "text", validation={"minLength": 5, "maxLength": 1}), "invalid_rule"),
        (_attr("colour", "select", validation={"options": ["a", "a"]}), "invalid_rule"),
        (_attr("name", "text", validation={"pattern": "([a-z"}), "invalid_pattern"),
        (_attr("colour", "select"), "options_required"),
        (_attr("sizes", "multiselect", validation={"options": []}), "options_required"),
        (_attr("name", "text", dimensionIds=["dim-planet"]), "unknown_dimension"),
        (_attr("name", "text", labels={"seg-xx": "X"}), "unknown_segment"),
        (_attr("name", "text", guard={"attributeAlias": "missing", "value": True}), "invalid_guard"),
        (_attr("name", "text", guard={"attributeAlias": "name", "value": "x"}), "invalid_guard"),
        (_attr("name", "text", guard={"attributeAlias": "flag", "value": "yes"}), "invalid_guard"),
        (_attr("name", "text", guard={"attributeAlias": "colour", "value": "purple"}), "invalid_guard"),
    ],
)
def test_attribute_rules_are_checked(
    client: TestClient, admin: Headers, attribute: dict[str, Any], code: str
) -> None:
    helpers = [_attr("flag", "boolean"), _attr("colour", "select", validation={"options": ["red"]})]
    attributes = [*(h for h in helpers if h["alias"] != attribute["alias"]), attribute]
    error = _error(_post_schema(client, admin, attributes), 422, code)
    assert attribute["alias"] in error["message"]
    _error(client.get(API + "/schemas/schema-gadget", headers=admin), 404, "not_found")


def test_guard_cycle_is_422(client: TestClient, admin: Headers) -> None:
    _error(
        _post_schema(
            client,
            admin,
            [
                _attr("a", "boolean", guard={"attributeAlias": "b", "value": True}),
                _attr("b", "boolean", guard={"attributeAlias": "a", "value": True}),
            ],
        ),
        422,
        "invalid_guard",
    )


def test_guard_on_a_multiselect_option(client: TestClient, admin: Headers) -> None:
    created = _post_schema(
        client,
        admin,
        [
            _attr("sizes", "multiselect", validation={"options": ["s", "xl"]}),
            _attr("xl-note", "text", guard={"attributeAlias": "sizes", "value": "xl"}),
        ],
    )
    assert created.status_code == 201, created.text


def test_alias_listed_twice_is_422(client: TestClient, admin: Headers) -> None:
    _error(_post_schema(client, admin, [_attr("a"), _attr("a", "integer")]), 422, "duplicate_id")


@pytest.mark.parametrize("alias", ["Name", "-name", "na me", "", "x" * 121, "näme"])
def test_alias_must_be_lowercase_key(client: TestClient, admin: Headers, alias: str) -> None:
    _error(_post_schema(client, admin, [_attr("ok") | {"alias": alias}]), 422, "validation_error")


@pytest.mark.parametrize(
    "bad",
    [
        {"dataType": "money"},
        {"validation": {"min": "1"}},
        {"validation": {"min": True}},
        {"dataType": "number", "validation": {"max": 10**400}},
        {"validation": {"minLength": -1}},
        {"validation": {"optionz": []}},
        {"validation": {"pattern": "x" * 1001}},
        {"required": "yes"},
        {"labels": ["seg-en"]},
        {"labels": {"seg-en": "x" * 201}},
        {"guard": {"attributeAlias": "a"}},
        {"guard": {"value": 1}},
        {"guard": {"attributeAlias": "a", "value": {"deep": 1}}},
        {"sortOrder": -1},
        {"sortOrder": 2**40},
        {"sortOrder": 1.5},
        {"dimensionIds": "dim-language"},
        {"colour": "red"},
    ],
)
def test_malformed_attribute_is_422(client: TestClient, admin: Headers, bad: dict[str, Any]) -> None:
    _error(_post_schema(client, admin, [_attr("ok") | bad]), 422, "validation_error")


def test_add_attribute(client: TestClient, admin: Headers) -> None:
    created = client.post(
        API + "/schemas/schema-apparel/attributes",
        headers=admin,
        json=_attr("season", "select", validation={"options": ["ss", "aw"]}),
    )
    assert created.status_code == 201, created.text
    assert created.json()["sortOrder"] == 17  # after the 17 seed attributes
    schema = client.get(API + "/schemas/schema-apparel", headers=admin).json()
    assert schema["attributes"][-1]["alias"] == "season"
    assert schema["updatedAt"] >= schema["createdAt"]
    _error(
        client.post(API + "/schemas/schema-apparel/attributes", headers=admin, json=_attr("sku")),
        409,
        "already_exists",
    )
    _error(
        client.post(API + "/schemas/schema-nope/attributes", headers=admin, json=_attr("x")), 404, "not_found"
    )
    _error(
        client.post(
            API + "/schemas/schema-apparel/attributes",
            headers=admin,
            json=_attr("x", guard={"attributeAlias": "nope", "value": 1}),
        ),
        422,
        "invalid_guard",
    )


def test_update_attribute_changes_only_given_fields(client: TestClient, admin: Headers) -> None:
    path = API + "/schemas/schema-apparel/attributes/hood-type"
    before = client.get(path, headers=admin).json()
    renamed = client.put(path, headers=admin, json={"name": "Hood", "labels": {"seg-en": "Hood"}})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json() == before | {"name": "Hood", "labels": {"seg-en": "Hood"}}
    unguarded = client.put(path, headers=admin, json={"guard": None}).json()
    assert unguarded["guard"] is None and unguarded["validation"] == before["validation"]
    _error(
        client.put(API + "/schemas/schema-apparel/attributes/nope", headers=admin, json={"name": "x"}),
        404,
        "not_found",
    )


def test_update_attribute_checks_the_result(client: TestClient, admin: Headers) -> None:
    path = API + "/schemas/schema-apparel/attributes/price"
    # min does not apply to text: the type change alone leaves an unfit rule.
    _error(client.put(path, headers=admin, json={"dataType": "text"}), 422, "invalid_rule")
    changed = client.put(path, headers=admin, json={"dataType": "text", "validation": {"maxLength": 20}})
    assert changed.status_code == 200, changed.text
    assert changed.json()["dataType"] == "text" and changed.json()["validation"] == {"maxLength": 20}
    # has-hood guards hood-type with value true: it cannot become a date.
    _error(
        client.put(
            API + "/schemas/schema-apparel/attributes/has-hood", headers=admin, json={"dataType": "date"}
        ),
        422,
        "invalid_guard",
    )
    _error(client.put(path, headers=admin, json={"alias": "cost"}), 422, "validation_error")


def test_changing_the_type_of_an_attribute_with_values_is_409(client: TestClient, admin: Headers) -> None:
    add_record("schema-apparel", [("weight", "", "500")])
    error = _error(
        client.put(
            API + "/schemas/schema-apparel/attributes/weight", headers=admin, json={"dataType": "number"}
        ),
        409,
        "in_use",
    )
    assert "weight" in error["message"] and "1 records" in error["message"]
    # Other changes are fine.
    assert (
        client.put(
            API + "/schemas/schema-apparel/attributes/weight", headers=admin, json={"name": "Weight"}
        ).status_code
        == 200
    )


def test_dropping_a_dimension_values_use_is_409(client: TestClient, admin: Headers) -> None:
    add_record("schema-apparel", [("price", "dim-market=seg-dk", "969")])
    _error(
        client.put(
            API + "/schemas/schema-apparel/attributes/price", headers=admin, json={"dimensionIds": []}
        ),
        409,
        "in_use",
    )
    add_record("schema-apparel", [("description", "", "Global only")])
    assert (
        client.put(
            API + "/schemas/schema-apparel/attributes/description", headers=admin, json={"dimensionIds": []}
        ).status_code
        == 200
    )


def test_dropping_an_option_values_use_is_409(client: TestClient, admin: Headers) -> None:
    add_record("schema-apparel", [("sizes", "", "XL"), ("sizes", "", "S")])
    path = API + "/schemas/schema-apparel/attributes/sizes"
    _error(client.put(path, headers=admin, json={"validation": {"options": ["S", "M"]}}), 409, "in_use")
    ok = client.put(path, headers=admin, json={"validation": {"options": ["S", "XL"]}})
    assert ok.status_code == 200, ok.text


def test_delete_attribute(client: TestClient, admin: Headers) -> None:
    assert client.delete(API + "/schemas/schema-apparel/attributes/ean", headers=admin).status_code == 204
    _error(client.get(API + "/schemas/schema-apparel/attributes/ean", headers=admin), 404, "not_found")
    _error(client.delete(API + "/schemas/schema-apparel/attributes/ean", headers=admin), 404, "not_found")


def test_deleting_an_attribute_with_values_is_409(client: TestClient, admin: Headers) -> None:
    add_record("schema-apparel", [("brand", "", "Ma Marque")])
    error = _error(
        client.delete(API + "/schemas/schema-apparel/attributes/brand", headers=admin), 409, "in_use"
    )
    assert "brand" in error["message"]
    # A value of the same alias in another schema does not count.
    client.post(
        API + "/schemas",
        headers=admin,
        json={"id": "schema-other", "name": "O", "attributes": [_attr("material")]},
    )
    add_record("schema-other", [("material", "", "Wool")], state=None)
    assert (
        client.delete(API + "/schemas/schema-apparel/attributes/material", headers=admin).status_code == 204
    )


def test_deleting_a_guard_target_is_409(client: TestClient, admin: Headers) -> None:
    error = _error(
        client.delete(API + "/schemas/schema-apparel/attributes/has-hood", headers=admin), 409, "in_use"
    )
    assert "hood-type" in error["message"]


def test_update_schema(client: TestClient, admin: Headers) -> None:
    client.post(API + "/schemas", headers=admin, json=_schema())
    updated = client.put(
        API + "/schemas/schema-gadget",
        headers=admin,
        json={"name": "Gadgets", "description": None, "workflowId": None},
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["name"] == "Gadgets" and updated.json()["workflowId"] is None
    assert len(updated.json()["attributes"]) == len(ALL_TYPES)
    replaced = client.put(
        API + "/schemas/schema-gadget",
        headers=admin,
        json={"attributes": [_attr("weight", "integer"), _attr("extra", "boolean")]},
    )
    assert replaced.status_code == 200, replaced.text
    assert [a["alias"] for a in replaced.json()["attributes"]] == ["weight", "extra"]
    assert replaced.json()["attributes"][0]["validation"] == {}
    _error(
        client.put(API + "/schemas/schema-gadget", headers=admin, json={"workflowId": "wf-nope"}),
        422,
        "unknown_workflow",
    )
    _error(client.put(API + "/schemas/schema-nope", headers=admin, json={"name": "x"}), 404, "not_found")


def test_replacing_attributes_keeps_those_with_values(client: TestClient, admin: Headers) -> None:
    add_record("schema-apparel", [("sku", "", "CW-001")])
    error = _error(
        client.put(
            API + "/schemas/schema-apparel", headers=admin, json={"attributes": [_attr("product-name")]}
        ),
        409,
        "in_use",
    )
    assert "sku" in error["message"]


def test_changing_the_workflow_of_a_schema_with_records_is_409(client: TestClient, admin: Headers) -> None:
    client.post(API + "/workflows", headers=admin, json=_workflow())
    add_record("schema-apparel", [])
    _error(
        client.put(API + "/schemas/schema-apparel", headers=admin, json={"workflowId": "wf-simple"}),
        409,
        "in_use",
    )
    # Naming the same workflow again is no change.
    assert (
        client.put(
            API + "/schemas/schema-apparel", headers=admin, json={"workflowId": "wf-apparel"}
        ).status_code
        == 200
    )


def test_delete_schema(client: TestClient, admin: Headers) -> None:
    client.post(API + "/schemas", headers=admin, json=_schema())
    assert client.delete(API + "/schemas/schema-gadget", headers=admin).status_code == 204
    _error(client.get(API + "/schemas/schema-gadget", headers=admin), 404, "not_found")
    # The attribute rows went with it: the same aliases can be created again.
    assert client.post(API + "/schemas", headers=admin, json=_schema()).status_code == 201


def test_deleting_a_schema_with_records_is_409(client: TestClient, admin: Headers) -> None:
    add_record("schema-apparel", [])
    error = _error(client.delete(API + "/schemas/schema-apparel", headers=admin), 409, "in_use")
    assert "1 records" in error["message"]


# Catalogs and categories


def test_catalog_crud(client: TestClient, admin: Headers) -> None:
    created = client.post(
        API + "/catalogs",
        headers=admin,
        json={"id": "catalog-print", "name": "Print", "description": "Paper catalogue"},
    )
    assert created.status_code == 201, created.text
    assert created.json()["description"] == "Paper catalogue" and created.json()["createdAt"].endswith("Z")
    assert [c["id"] for c in client.get(API + "/catalogs", headers=admin).json()] == [
        "catalog-print",
        "catalog-webshop",
    ]
    updated = client.put(API + "/catalogs/catalog-print", headers=admin, json={"name": "Printed"}).json()
    assert updated["name"] == "Printed" and updated["description"] == "Paper catalogue"
    cleared = client.put(API + "/catalogs/catalog-print", headers=admin, json={"description": None}).json()
    assert cleared["description"] is None and cleared["name"] == "Printed"
    generated = client.post(API + "/catalogs", headers=admin, json={"name": "Auto"}).json()
    assert generated["id"].startswith("catalog-")
    _error(
        client.post(API + "/catalogs", headers=admin, json={"id": "catalog-print", "name": "P"}),
        409,
        "already_exists",
    )
    _error(client.get(API + "/catalogs/catalog-nope", headers=admin), 404, "not_found")
    _error(client.get(API + "/catalogs/catalog-nope/categories", headers=admin), 404, "not_found")


def test_categories_flat_and_tree(client: TestClient, admin: Headers) -> None:
    flat = client.get(API + "/catalogs/catalog-webshop/categories", headers=admin).json()
    assert [c["id"] for c in flat] == [
        "cat-apparel",
        "cat-outerwear",
        "cat-jackets",
        "cat-knitwear",
        "cat-collections",
        "cat-spring-collection",
    ]
    assert flat[1] == {
        "id": "cat-outerwear",
        "catalogId": "catalog-webshop",
        "parentId": "cat-apparel",
        "name": "Outerwear",
        "sortOrder": 0,
    }
    tree = client.get(API + "/catalogs/catalog-webshop/categories?tree=true", headers=admin).json()
    assert [c["id"] for c in tree] == ["cat-apparel", "cat-collections"]
    assert [c["id"] for c in tree[0]["children"]] == ["cat-outerwear", "cat-knitwear"]
    assert tree[0]["children"][0]["children"][0]["id"] == "cat-jackets"
    assert tree[0]["children"][0]["children"][0]["children"] == []
    _error(
        client.get(API + "/catalogs/catalog-webshop/categories?tree=maybe", headers=admin),
        422,
        "validation_error",
    )


def test_create_category(client: TestClient, admin: Headers) -> None:
    path = API + "/catalogs/catalog-webshop/categories"
    created = client.post(
        path, headers=admin, json={"id": "cat-vests", "name": "Vests", "parentId": "cat-outerwear"}
    )
    assert created.status_code == 201, created.text
    assert created.json() == {
        "id": "cat-vests",
        "catalogId": "catalog-webshop",
        "parentId": "cat-outerwear",
        "name": "Vests",
        "sortOrder": 1,
    }  # after cat-jackets
    root = client.post(path, headers=admin, json={"name": "Sale"}).json()
    assert root["id"].startswith("cat-") and root["parentId"] is None and root["sortOrder"] == 2
    _error(client.post(path, headers=admin, json={"id": "cat-vests", "name": "V"}), 409, "already_exists")
    _error(
        client.post(path, headers=admin, json={"name": "X", "parentId": "cat-nope"}), 422, "invalid_parent"
    )
    _error(
        client.post(API + "/catalogs/catalog-nope/categories", headers=admin, json={"name": "X"}),
        404,
        "not_found",
    )


def test_parent_must_be_in_the_same_catalog(client: TestClient, admin: Headers) -> None:
    client.post(API + "/catalogs", headers=admin, json={"id": "catalog-print", "name": "Print"})
    _error(
        client.post(
            API + "/catalogs/catalog-print/categories",
            headers=admin,
            json={"name": "X", "parentId": "cat-apparel"},
        ),
        422,
        "invalid_parent",
    )
    client.post(API + "/catalogs/catalog-print/categories", headers=admin, json={"id": "cat-p", "name": "P"})
    _error(
        client.put(API + "/categories/cat-jackets", headers=admin, json={"parentId": "cat-p"}),
        422,
        "invalid_parent",
    )


def test_move_category(client: TestClient, admin: Headers) -> None:
    moved = client.put(
        API + "/categories/cat-jackets",
        headers=admin,
        json={"parentId": "cat-collections", "sortOrder": 5, "name": "All jackets"},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json() | {} == {
        "id": "cat-jackets",
        "catalogId": "catalog-webshop",
        "parentId": "cat-collections",
        "name": "All jackets",
        "sortOrder": 5,
    }
    top = client.put(API + "/categories/cat-jackets", headers=admin, json={"parentId": None}).json()
    assert top["parentId"] is None and top["name"] == "All jackets"
    same = client.put(API + "/categories/cat-jackets", headers=admin, json={"name": "Jackets"}).json()
    assert same["parentId"] is None
    _error(client.put(API + "/categories/cat-nope", headers=admin, json={"name": "x"}), 404, "not_found")


@pytest.mark.parametrize("target", ["cat-apparel", "cat-outerwear", "cat-jackets"])
def test_moving_under_itself_or_a_descendant_is_422(client: TestClient, admin: Headers, target: str) -> None:
    _error(
        client.put(API + "/categories/cat-apparel", headers=admin, json={"parentId": target}),
        422,
        "category_cycle",
    )


def test_delete_category_takes_its_subtree_and_assignments(client: TestClient, admin: Headers) -> None:
    add_record("schema-apparel", [], categories=("cat-jackets", "cat-knitwear"))
    assert assignment_count("cat-jackets") == 1
    assert client.delete(API + "/categories/cat-outerwear", headers=admin).status_code == 204
    for gone in ("cat-outerwear", "cat-jackets"):
        _error(client.get(API + f"/categories/{gone}", headers=admin), 404, "not_found")
    assert assignment_count("cat-jackets") == 0
    assert assignment_count("cat-knitwear") == 1
    flat = client.get(API + "/catalogs/catalog-webshop/categories", headers=admin).json()
    assert [c["id"] for c in flat] == [
        "cat-apparel",
        "cat-knitwear",
        "cat-collections",
        "cat-spring-collection",
    ]


def test_delete_catalog_takes_its_categories(client: TestClient, admin: Headers) -> None:
    add_record("schema-apparel", [], categories=("cat-jackets",))
    assert client.delete(API + "/catalogs/catalog-webshop", headers=admin).status_code == 204
    _error(client.get(API + "/categories/cat-apparel", headers=admin), 404, "not_found")
    assert assignment_count("cat-jackets") == 0
    assert client.get(API + "/catalogs", headers=admin).json() == []


# Weird input never gives a 500

WEIRD_BODIES: list[Any] = [
    None,
    [],
    "text",
    5,
    {},
    {"name": None},
    {"name": 5},
    {"name": ""},
    {"name": "   "},
    {"name": "x" * 201},
    {"name": "x", "unknown": 1},
    {"name": "x", "sortOrder": 10**30},
    {"name": "x", "sortOrder": True},
    {"name": "x", "sortOrder": "1"},
    {"name": "x", "id": 5},
    {"name": "x", "id": "x" * 5000},
    {"name": "x", "segments": "seg-a"},
    {"name": "x", "segments": [None]},
    {"name": "x", "states": [{}]},
    {"name": "x", "attributes": [{"alias": "a"}]},
    {"name": "x", "parentId": ["cat-apparel"]},
    {"name": "x", "description": "d" * 6000},
    {"name": "x", "workflowId": {"id": "wf-apparel"}},
    {"name": "\u0000\ud7ff"},
]
WEIRD_TARGETS = [
    ("post", "/dimensions"),
    ("put", "/dimensions/dim-language"),
    ("post", "/workflows"),
    ("put", "/workflows/wf-apparel"),
    ("post", "/schemas"),
    ("put", "/schemas/schema-apparel"),
    ("post", "/schemas/schema-apparel/attributes"),
    ("put", "/schemas/schema-apparel/attributes/sku"),
    ("post", "/catalogs"),
    ("put", "/catalogs/catalog-webshop"),
    ("post", "/catalogs/catalog-webshop/categories"),
    ("put", "/categories/cat-jackets"),
]


def test_weird_bodies_get_a_4xx_envelope(client: TestClient, admin: Headers) -> None:
    for method, path in WEIRD_TARGETS:
        for body in WEIRD_BODIES:
            response = client.request(method, API + path, headers=admin, json=body)
            assert response.status_code < 500, (path, body, response.text)
            if response.status_code >= 400:
                assert response.json()["error"]["code"], response.text
        bad_json = client.request(
            method, API + path, headers=admin | {"content-type": "application/json"}, content=b"{not json"
        )
        _error(bad_json, 400, "invalid_json")


def test_odd_ids_in_paths_are_404_or_400(client: TestClient, admin: Headers) -> None:
    for path in (
        "/dimensions/",
        "/workflows/",
        "/schemas/",
        "/catalogs/",
        "/categories/",
        "/schemas/schema-apparel/attributes/",
    ):
        for ident in ("x" * 3000, "%25", "'; drop table schemas; --", "%C3%A6"):
            response = client.get(API + path + ident, headers=admin)
            assert response.status_code == 404, (path, ident, response.text)
        # NUL is refused for every URL by the app (PostgreSQL cannot store it).
        _error(client.get(API + path + "dim-language%00", headers=admin), 400, "invalid_characters")
    assert client.get(API + "/schemas/schema-apparel", headers=admin).status_code == 200


def test_unknown_fields_are_refused(client: TestClient, admin: Headers) -> None:
    error = _error(
        client.post(API + "/catalogs", headers=admin, json={"name": "C", "colour": "red"}),
        422,
        "validation_error",
    )
    assert "colour" in error["message"]


def test_option_labels_name_the_attributes_options_in_known_segments(
    client: TestClient, admin: Headers
) -> None:
    color = client.get(API + "/schemas/schema-apparel/attributes/color", headers=admin).json()
    assert color["optionLabels"]["Red"] == {"seg-da": "Rød", "seg-de": "Rot"}  # the demo's labels
    url = API + "/schemas/schema-apparel/attributes/hood-type"
    labels = {"packable": {"seg-da": "Pakbar", "seg-de": "Verstaubar"}}
    changed = client.put(url, headers=admin, json={"optionLabels": labels})
    assert changed.status_code == 200, changed.text
    assert changed.json()["optionLabels"] == labels
    assert client.get(url, headers=admin).json()["optionLabels"] == labels
    refused = client.put(url, headers=admin, json={"optionLabels": {"zipped": {"seg-da": "Lynlås"}}})
    assert refused.status_code == 422 and "zipped" in refused.json()["error"]["message"]
    refused = client.put(url, headers=admin, json={"optionLabels": {"fixed": {"seg-xx": "Fast"}}})
    assert refused.status_code == 422 and "seg-xx" in refused.json()["error"]["message"]
    text = API + "/schemas/schema-apparel/attributes/brand"
    refused = client.put(text, headers=admin, json={"optionLabels": {"Ma Marque": {"seg-da": "Mit mærke"}}})
    assert refused.status_code == 422 and "only select and multiselect" in refused.json()["error"]["message"]
