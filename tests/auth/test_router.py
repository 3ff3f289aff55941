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
