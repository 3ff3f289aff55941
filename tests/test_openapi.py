"""Schemathesis over every operation of /openapi.json: no 5xx, nothing that contradicts the schema."""

from __future__ import annotations

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck
from schemathesis import checks

from skuport.app import create_app

schema = schemathesis.openapi.from_asgi("/openapi.json", create_app())

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
    checks.negative_data_rejection,
    checks.missing_required_header,
    checks.unsupported_method,
    checks.ignored_auth,
    checks.allow_header_conformance,
    checks.use_after_free,
    checks.ensure_resource_availability,
]
"""Every check schemathesis has but positive_data_acceptance: a request valid by the schema may still name
a schema, state or catalog that does not exist, and 404/422 are then the right answers."""


@pytest.fixture
def headers(admin: dict[str, str]) -> dict[str, str]:
    """Admin headers over the seed world and records, so operations reach real data."""
    from skuport.db import session_scope
    from skuport.demo import load_seed_records

    with session_scope() as session:
        load_seed_records(session)
    return admin


@schema.parametrize()
@hypothesis.settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms(case: schemathesis.Case, headers: dict[str, str]) -> None:
    from schemathesis import GenerationMode

    components = case.meta.components if case.meta is not None else {}
    mutated_headers = any(
        getattr(location, "value", location) == "header" and info.mode == GenerationMode.NEGATIVE
        for location, info in components.items()
    )
    # a case whose headers were made invalid on purpose is sent as generated (without the admin token)
    case.call_and_validate(headers=None if mutated_headers else headers, checks=CHECKS)


def test_openapi_declares_the_error_envelope_everywhere(client) -> None:  # type: ignore[no-untyped-def]
    document = client.get("/openapi.json").json()
    assert "ErrorEnvelope" in document["components"]["schemas"]
    for path, operations in document["paths"].items():
        if not path.startswith("/api/v1"):
            continue
        for method, operation in operations.items():
            # the errors each operation can answer, and only those
            expected = {"400", "401"}
            if method != "get":
                expected |= {"403", "409"}
            if "{" in path:
                expected.add("404")
            if "requestBody" in operation:
                expected |= {"413", "422"}
            declared = {code for code in operation["responses"] if code.startswith("4")}
            assert expected <= declared, f"{method.upper()} {path} lacks {expected - declared}"
            if "requestBody" not in operation:
                assert "413" not in declared, f"{method.upper()} {path} has no body to be too large"
            if path not in ("/api/v1/exports",) or method != "post":
                assert "429" not in declared, f"{method.upper()} {path} is never rate limited"
            for status in declared:
                ref = operation["responses"][status]["content"]["application/json"]["schema"]["$ref"]
                assert ref.endswith("/ErrorEnvelope")


def test_every_operation_refuses_a_request_without_token(client) -> None:  # type: ignore[no-untyped-def]
    document = client.get("/openapi.json").json()
    checked = 0
    for path, operations in document["paths"].items():
        if not path.startswith("/api/v1"):
            continue
        concrete = path
        for name in [part[1:-1] for part in path.split("/") if part.startswith("{")]:
            concrete = concrete.replace("{" + name + "}", "x-1")
        for method in operations:
            response = client.request(method.upper(), concrete)
            # The download also accepts a signed URL instead of a token: without either it is refused too.
            assert response.status_code == 401, f"{method.upper()} {path}: {response.status_code}"
            assert response.json()["error"]["code"] == "unauthorized"
            checked += 1
    assert checked >= 68
