"""Users and roles API: admin-only management, /users/me, role validation."""

from __future__ import annotations

from fastapi.testclient import TestClient

from skuport.auth.roles import RoleId
from tests.factories import make_user, token_for

API = "/api/v1"


def test_roles_are_listed_for_any_user(client: TestClient, world: None) -> None:
    viewer = make_user("user-v", RoleId.VIEWER)
    roles = client.get(f"{API}/roles", headers=viewer).json()
    assert [r["id"] for r in roles] == ["role-admin", "role-editor", "role-runner", "role-viewer"]


def test_admin_creates_and_updates_users_who_can_then_log_in(client: TestClient, admin: dict) -> None:
    created = client.post(
        f"{API}/users", json={"id": "user-jane", "name": "Jane", "roleIds": ["role-editor"]}, headers=admin
    )
    assert created.status_code == 201
    assert created.json() | {"createdAt": None} == {
        "id": "user-jane",
        "name": "Jane",
        "email": None,
        "roleIds": ["role-editor"],
        "active": True,
        "createdAt": None,
    }
    jane = {"Authorization": f"Bearer {token_for('user-jane')}"}
    assert client.get(f"{API}/users/me", headers=jane).json()["roleIds"] == ["role-editor"]
    assert client.get(f"{API}/users", headers=jane).status_code == 403
    client.patch(f"{API}/users/user-jane", json={"active": False}, headers=admin)
    assert client.get(f"{API}/users/me", headers=jane).json()["error"]["code"] == "invalid_token"


def test_user_validation(client: TestClient, admin: dict) -> None:
    dup = client.post(f"{API}/users", json={"id": "user-admin", "name": "X"}, headers=admin)
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "already_exists"
    bad_role = client.post(f"{API}/users", json={"name": "X", "roleIds": ["role-god"]}, headers=admin)
    assert bad_role.status_code == 422 and "role-god" in bad_role.json()["error"]["message"]
    bad_id = client.post(f"{API}/users", json={"id": "jane", "name": "X"}, headers=admin)
    assert bad_id.status_code == 422 and bad_id.json()["error"]["code"] == "validation_error"
    assert client.get(f"{API}/users/user-nope", headers=admin).status_code == 404


def test_token_for_unknown_user_is_401(client: TestClient, world: None) -> None:
    response = client.get(f"{API}/roles", headers={"Authorization": f"Bearer {token_for('user-ghost')}"})
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_token"


def test_the_last_active_admin_can_neither_be_demoted_nor_disabled(
    client: TestClient, admin: dict[str, str]
) -> None:
    for change in ({"roleIds": ["role-viewer"]}, {"active": False}):
        refused = client.patch("/api/v1/users/user-admin", json=change, headers=admin)
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "last_admin", change
    me = client.get("/api/v1/users/user-admin", headers=admin).json()
    assert me["active"] is True and "role-admin" in me["roleIds"]
    # with a second admin, the first may step down
    make_user("user-second-admin", "role-admin")
    assert (
        client.patch("/api/v1/users/user-admin", json={"roleIds": ["role-editor"]}, headers=admin).status_code
        == 200
    )
    viewer = make_user("user-viewer-x", "role-viewer")
    assert (
        viewer
        and client.patch(
            "/api/v1/users/user-viewer-x",
            json={"active": False},
            headers={"Authorization": f"Bearer {token_for('user-second-admin')}"},
        ).status_code
        == 200
    )


def test_input_booleans_are_true_or_false_only(client: TestClient, admin: dict[str, str]) -> None:
    for value in (0, 1, "yes", "true"):
        response = client.post("/api/v1/users", headers=admin, json={"name": "Flag", "active": value})
        assert response.status_code == 422, (value, response.text)
    created = client.post("/api/v1/users", headers=admin, json={"name": "Flag", "active": False})
    assert created.status_code == 201
    # /users/me is its own endpoint: its Allow does not borrow /users/{id}'s methods
    response = client.delete("/api/v1/users/me", headers=admin)
    assert response.status_code == 405 and response.headers["allow"] == "GET, HEAD"
