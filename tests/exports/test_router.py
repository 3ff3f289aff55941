"""One-off exports through the API, from creation to a file read back by an independent reader."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from skuport.db import session_scope
from skuport.exports.models import Export
from tests.exports.helpers import (
    READERS,
    add_many,
    add_records,
    create,
    drain,
    gated_pipeline,
    gunzip,
    product,
    read_csv,
    read_json,
    run,
    signed_path,
    wait,
)
from tests.factories import make_user

API = "/api/v1/exports"


@pytest.fixture
def catalogue(admin: dict[str, str]) -> list[str]:
    """Three records: two of brand 'Ma Marque' (seed 003), one other; CW-001 is in a category."""
    return add_records(
        product(
            "CW-001",
            "Coastal Windbreaker",
            price=129.99,
            brand="Ma Marque",
            ean="5701234567890",
            price_dk=969,
            name_da="Kyst Vindjakke",
            in_stock=True,
        ),
        product("MM-002", "Harbour Parka", price=249.0, brand="Ma Marque", ean="5701234567891"),
        product("OT-003", "Trail Fleece", price=59.5, brand="Other", ean="5701234567892"),
        categories={0: "cat-jackets"},
    )


# --- seed 003: format, filters, fields -------------------------------------------------------------


def test_seed_003_csv_export_with_filters_and_fields(
    client: TestClient, admin: dict[str, str], catalogue: list[str]
) -> None:
    # given the seed's request in skuport's form (title -> product-name, stock -> in-stock)
    body = {
        "format": "csv",
        "filters": {"brand": "Ma Marque"},
        "fields": ["id", "ean", "product-name", "price", "in-stock"],
    }
    # when it is created
    created = create(client, admin, **body)
    # then the answer is the seed's: id, status pending, format, createdAt
    assert created["id"].startswith("exp-")
    assert created["status"] == "pending"
    assert created["format"] == "csv"
    created_at = dt.datetime.fromisoformat(created["createdAt"].replace("Z", "+00:00"))
    assert abs((dt.datetime.now(dt.UTC) - created_at).total_seconds()) < 60
    assert created["filters"] == {"brand": "Ma Marque"}
    assert created["fields"] == body["fields"]
    assert created["progress"] == {"done": 0, "total": 2}
    assert created["downloadUrl"] is None

    done = wait(client, admin, created["id"])
    assert done["status"] == "completed", done
    assert done["recordCount"] == 2
    assert done["progress"] == {"done": 2, "total": 2}
    assert done["startedAt"] and done["completedAt"] and done["completedAt"] >= done["startedAt"]
    expires = dt.datetime.fromisoformat(done["expiresAt"].replace("Z", "+00:00"))
    completed = dt.datetime.fromisoformat(done["completedAt"].replace("Z", "+00:00"))
    assert expires - completed == dt.timedelta(days=7)
    assert done["fileExpired"] is False and done["errorsLog"] is None

    # the file comes back with the right headers and reads with the csv module
    response = client.get(f"{API}/{created['id']}/download", headers=admin)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == f'attachment; filename="{created["id"]}.csv"'
    assert int(response.headers["content-length"]) == done["fileSize"] == len(response.content)
    rows = read_csv(response.content)
    assert [row["id"] for row in rows] == catalogue[:2]  # the 'Other' brand is filtered out
    # exactly the requested fields, in their order, one column per scope
    named = [c.split("[")[0] for c in rows[0]]
    assert list(dict.fromkeys(named)) == body["fields"]
    assert named == sorted(named, key=body["fields"].index)  # an attribute's scopes stay together
    first = rows[0]
    assert first["ean"] == "5701234567890"
    assert first["product-name"] == "Coastal Windbreaker"
    assert first["product-name[dim-language=seg-da]"] == "Kyst Vindjakke"
    assert float(first["price"]) == 129.99 and float(first["price[dim-market=seg-dk]"]) == 969
    assert first["in-stock"] == "true"
    assert rows[1]["product-name"] == "Harbour Parka" and rows[1]["in-stock"] == ""


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl", "xml", "xlsx"])
def test_every_format_reads_back(
    client: TestClient, admin: dict[str, str], catalogue: list[str], fmt: str
) -> None:
    done = run(client, admin, format=fmt, filters={"brand": "Ma Marque"})
    response = client.get(f"{API}/{done['id']}/download", headers=admin)
    assert response.status_code == 200
    assert response.headers["content-disposition"].endswith(f'.{fmt}"')
    expected_type = {
        "csv": "text/csv",
        "json": "application/json",
        "jsonl": "application/",
        "xml": "application/xml",
        "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    }[fmt]
    assert response.headers["content-type"].startswith(expected_type)
    records = READERS[fmt](response.content)
    assert len(records) == 2
    assert b"Harbour Parka" in response.content or fmt == "xlsx"
    if fmt == "xlsx":
        assert any("Harbour Parka" in map(str, row.values()) for row in records)


def test_a_compressed_export_is_a_gzip_file(
    client: TestClient, admin: dict[str, str], catalogue: list[str]
) -> None:
    done = run(client, admin, format="csv", compress=True)
    assert done["compress"] is True and done["filename"].endswith(".csv.gz")
    response = client.get(f"{API}/{done['id']}/download", headers=admin)
    assert response.headers["content-type"] == "application/gzip"
    assert response.headers["content-disposition"].endswith('.csv.gz"')
    assert response.content[:2] == b"\x1f\x8b"
    assert len(read_csv(gunzip(response.content))) == 3


def test_a_dimension_scope_resolves_scoped_values(
    client: TestClient, admin: dict[str, str], catalogue: list[str]
) -> None:
    done = run(
        client,
        admin,
        format="json",
        filters={"sku_eq": "CW-001"},
        fields=["sku", "price"],
        dimensionScope={"dim-market": "seg-dk"},
    )
    assert done["dimensionScope"] == {"dim-market": "seg-dk"}
    records = read_json(client.get(f"{API}/{done['id']}/download", headers=admin).content)
    assert records == [
        {**{k: records[0][k] for k in records[0] if k not in ("sku", "price")}, "sku": "CW-001", "price": 969}
    ]
    assert not any("[" in column for column in records[0])  # one column per attribute


# --- seed 004: resource attributes, includes, dry_data, reference, metadata -----------------------


def test_seed_004_resource_attributes(
    client: TestClient, admin: dict[str, str], catalogue: list[str]
) -> None:
    body = {
        "resourceType": "records",
        "format": "json",
        "includes": ["categories", "lifecycleState"],
        "fields": ["sku", "product-name"],
        "filters": {"sku_eq": "CW-001"},
        "dryData": False,
        "reference": "ANY-EXTERNAL-REFERENCE",
        "referenceOrigin": "ANY-EXTERNAL-REFERENCE-ORIGIN",
        "metadata": {"foo": "bar", "nested": {"n": 1}},
    }
    created = create(client, admin, **body)
    for key, value in body.items():
        assert created[key] == value, key
    done = wait(client, admin, created["id"])
    assert done["status"] == "completed", done
    for key, value in body.items():
        assert done[key] == value, key
    assert done["recordCount"] == 1
    records = read_json(client.get(f"{API}/{done['id']}/download", headers=admin).content)
    assert len(records) == 1
    flat = str(records[0])
    assert "CW-001" in flat and "Coastal Windbreaker" in flat
    assert records[0]["categories"] == ["cat-jackets"]  # the categories include
    assert records[0]["lifecycleStateId"] == "state-draft"  # lifecycleState: always a column
    assert set(records[0]) >= {"sku", "product-name"}
    assert "brand" not in records[0] and "price" not in records[0]


def test_completeness_can_be_included(
    client: TestClient, admin: dict[str, str], catalogue: list[str]
) -> None:
    done = run(client, admin, format="json", includes=["completeness"], filters={"brand": "Ma Marque"})
    assert done["includes"] == ["completeness"]
    records = read_json(client.get(f"{API}/{done['id']}/download", headers=admin).content)
    by_id = {r["id"]: r for r in records}
    from skuport.db import session_scope
    from skuport.records.service import completeness

    with session_scope() as session:
        for record_id in catalogue[:2]:
            expected = completeness(session, record_id=record_id)["percentage"]
            assert by_id[record_id]["completeness"] == expected


def test_includes_that_contradict_include_variants_are_refused(
    client: TestClient, admin: dict[str, str], catalogue: list[str]
) -> None:
    conflict = client.post(API, json={"includes": ["variants"], "includeVariants": False}, headers=admin)
    assert conflict.status_code == 422 and "includeVariants" in conflict.json()["error"]["message"]


def test_dry_data_leaves_out_redundant_data(
    client: TestClient, admin: dict[str, str], catalogue: list[str]
) -> None:
    full = run(client, admin, format="json", filters={"sku_eq": "MM-002"}, dryData=False)
    dry = run(client, admin, format="json", filters={"sku_eq": "MM-002"}, dryData=True)
    assert dry["dryData"] is True
    full_record = read_json(client.get(f"{API}/{full['id']}/download", headers=admin).content)[0]
    dry_record = read_json(client.get(f"{API}/{dry['id']}/download", headers=admin).content)[0]
    assert {"id", "createdAt", "updatedAt"} <= set(full_record)
    assert not {"id", "parentId", "createdAt", "updatedAt"} & set(dry_record)
    assert dry_record["product-name"] == full_record["product-name"] == "Harbour Parka"
    assert dry_record["sku"] == "MM-002"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"includes": ["prices.price_tiers"]}, "validation_error"),
        ({"format": "pdf"}, "validation_error"),
        ({"resourceType": "orders"}, "validation_error"),
        ({"filters": {"no-such-attribute": 1}}, "invalid_filter"),
        ({"filters": {"price": {"between": 1}}}, "invalid_filter"),
        ({"colour": "red"}, "validation_error"),
        ({"metadata": {"blob": "x" * 5000}}, "metadata_too_large"),
        ({"metadata": ["not", "an", "object"]}, "validation_error"),
        ({"fields": []}, "validation_error"),
        ({"reference": "a\x00b"}, "validation_error"),
        ({"metadata": {"k": ["x\x00"]}}, "validation_error"),
        ({"filters": {"brand\x00": "x"}}, "validation_error"),
    ],
)
def test_bad_requests_are_refused_with_the_envelope(
    client: TestClient, admin: dict[str, str], catalogue: list[str], body: dict[str, Any], code: str
) -> None:
    response = client.post(API, json=body, headers=admin)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"]


def test_an_export_that_matches_nothing_is_refused(
    client: TestClient, admin: dict[str, str], catalogue: list[str]
) -> None:
    response = client.post(API, json={"filters": {"brand": "Nobody"}}, headers=admin)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "no_matching_records"
    assert "No record matches" in response.json()["error"]["message"]


def test_the_maximum_record_count_is_enforced(
    client: TestClient, admin: dict[str, str], catalogue: list[str], configure: Callable[..., None]
) -> None:
    configure(export_max_records=2)
    response = client.post(API, json={}, headers=admin)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "too_many_records" and error["details"] == [{"matching": 3, "limit": 2}]
    run(client, admin, filters={"brand": "Ma Marque"})  # two records are fine


def test_the_active_exports_per_user_limit(
    client: TestClient,
    admin: dict[str, str],
    catalogue: list[str],
    configure: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    configure(export_max_active_per_user=1)
    editor = make_user("user-ed2", "role-editor")
    with gated_pipeline(monkeypatch) as (reached, release):
        first = create(client, admin, format="csv")
        assert reached.wait(10)
        second = client.post(API, json={"format": "csv"}, headers=admin)
        assert second.status_code == 429
        assert second.json()["error"]["code"] == "too_many_active_exports"
        assert "POST /exports/{id}/interrupt" in second.json()["error"]["message"]
        # another user has their own allowance
        other = create(client, editor, format="json")
        release.set()
        assert wait(client, admin, first["id"])["status"] == "completed"
        assert wait(client, editor, other["id"])["status"] == "completed"
    run(client, admin, format="csv")  # the slot is free again


def test_concurrent_requests_cannot_overrun_the_active_limit(
    client: TestClient,
    admin: dict[str, str],
    catalogue: list[str],
    configure: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    configure(export_max_active_per_user=2)
    with gated_pipeline(monkeypatch) as (_reached, release):
        with ThreadPoolExecutor(6) as pool:
            codes = list(pool.map(lambda _i: client.post(API, json={}, headers=admin).status_code, range(6)))
        assert sorted(codes) == [202, 202, 429, 429, 429, 429]
        release.set()
        drain()
    listed = client.get(API, headers=admin).json()
    assert listed["total"] == 2 and {e["status"] for e in listed["items"]} == {"completed"}


# --- download: bearer, signed URL, tampering, expiry -----------------------------------------------


def test_the_signed_url_downloads_without_a_token(
    client: TestClient, admin: dict[str, str], catalogue: list[str]
) -> None:
    done = run(client, admin, format="csv")
    url = signed_path(done["downloadUrl"])
    assert "expires=" in url and "signature=" in url
    response = client.get(url)
    assert response.status_code == 200
    assert len(read_csv(response.content)) == 3
    assert client.get(f"{API}/{done['id']}/download").status_code == 401


def test_a_signed_url_stops_working_once_its_owner_is_disabled(
    client: TestClient, admin: dict[str, str], catalogue: list[str]
) -> None:
    from tests.factories import make_user

    editor = make_user("user-leaver", "role-editor")
    done = run(client, editor, format="csv")
    url = signed_path(done["downloadUrl"])
    assert client.get(url).status_code == 200
    assert client.patch("/api/v1/users/user-leaver", json={"active": False}, headers=admin).status_code == 200
    refused = client.get(url)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "link_revoked"


@pytest.mark.parametrize("tamper", ["signature", "expires", "id", "drop-signature"])
def test_tampered_urls_are_refused(
    client: TestClient, admin: dict[str, str], catalogue: list[str], tamper: str
) -> None:
    done = run(client, admin, format="csv", filters={"brand": "Ma Marque"})
    other = run(client, admin, format="csv", filters={"brand": "Other"})
    url = signed_path(done["downloadUrl"])
    path, query = url.split("?")
    params = dict(part.split("=") for part in query.split("&"))
    if tamper == "signature":
        params["signature"] = params["signature"][::-1]
    elif tamper == "expires":
        params["expires"] = str(int(params["expires"]) + 3600)
    elif tamper == "id":
        path = path.replace(done["id"], other["id"])
    else:
        del params["signature"]
    response = client.get(path + "?" + "&".join(f"{k}={v}" for k, v in params.items()))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "invalid_signature"


def test_an_expired_signed_url_is_refused(
    client: TestClient, admin: dict[str, str], catalogue: list[str]
) -> None:
    from skuport.config import get_settings
    from skuport.exports import signing

    done = run(client, admin, format="csv")
    expires, signature = signing.sign(
        get_settings(), export_id=done["id"], expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    )
    response = client.get(f"{API}/{done['id']}/download?expires={expires}&signature={signature}")
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "signature_expired" and "fresh downloadUrl" in error["message"]


def test_a_short_url_ttl_bounds_the_signed_url(
    client: TestClient, admin: dict[str, str], catalogue: list[str], configure: Callable[..., None]
) -> None:
    configure(export_url_ttl="10m")
    done = run(client, admin, format="csv")
    expires = int(signed_path(done["downloadUrl"]).split("expires=")[1].split("&")[0])
    assert abs(expires - (dt.datetime.now(dt.UTC).timestamp() + 600)) < 30
    assert client.get(signed_path(done["downloadUrl"])).status_code == 200


def _local_file(export_id: str) -> Path:
    from skuport.exports.storage import LocalStorage, get_storage

    with session_scope() as session:
        export = session.get(Export, export_id)
        assert export is not None and export.storage_key
        key = export.storage_key
    storage = get_storage("local")
    assert isinstance(storage, LocalStorage)
    return storage.root / key


def _age(export_id: str, *, expires_at: dt.datetime) -> None:
    with session_scope() as session:
        session.execute(update(Export).where(Export.id == export_id).values(expires_at=expires_at))


def test_after_expiry_the_file_is_removed_and_the_export_says_so(
    client: TestClient, admin: dict[str, str], catalogue: list[str]
) -> None:
    done = run(client, admin, format="csv")
    url = signed_path(done["downloadUrl"])
    path = _local_file(done["id"])
    assert path.is_file()
    _age(done["id"], expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    # checked on access: the download removes the file and answers 410
    response = client.get(f"{API}/{done['id']}/download", headers=admin)
    assert response.status_code == 410
    error = response.json()["error"]
    assert error["code"] == "export_expired" and "create a new export" in error["message"]
    assert not path.exists()
    body = client.get(f"{API}/{done['id']}", headers=admin).json()
    assert body["status"] == "completed" and body["fileExpired"] is True and body["downloadUrl"] is None
    assert body["recordCount"] == 3  # the history stays
    assert client.get(url).status_code in (403, 410)


def test_interrupt_while_running(
    client: TestClient, admin: dict[str, str], catalogue: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    add_many(40)
    with gated_pipeline(monkeypatch) as (reached, release):
        created = create(client, admin, format="csv")
        assert reached.wait(10)
        running = client.get(f"{API}/{created['id']}", headers=admin).json()
        assert running["status"] == "in_progress" and running["startedAt"]
        response = client.post(f"{API}/{created['id']}/interrupt", headers=admin)
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "interrupted" and body["interruptedAt"]
        release.set()
        drain()
    after = client.get(f"{API}/{created['id']}", headers=admin).json()
    assert after["status"] == "interrupted" and after["completedAt"] is None
    assert after["downloadUrl"] is None and after["recordCount"] is None
    download = client.get(f"{API}/{created['id']}/download", headers=admin)
    assert download.status_code == 409 and download.json()["error"]["code"] == "export_not_ready"
    again = client.post(f"{API}/{created['id']}/interrupt", headers=admin)
    assert again.status_code == 409 and again.json()["error"]["code"] == "export_not_interruptible"
    # nothing was left in the storage
    from skuport.exports.storage import LocalStorage, get_storage

    storage = get_storage("local")
    assert isinstance(storage, LocalStorage)
    assert not (storage.root / created["id"]).exists()


def test_interrupt_while_pending(
    client: TestClient, admin: dict[str, str], catalogue: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from skuport.config import get_settings

    workers = get_settings().run_workers
    with gated_pipeline(monkeypatch) as (reached, release):
        busy = [create(client, admin, format="csv") for _ in range(workers)]
        assert reached.wait(10)
        wait(client, admin, busy[-1]["id"], until=lambda body: body["status"] == "in_progress")
        queued = create(client, admin, format="json")
        assert client.get(f"{API}/{queued['id']}", headers=admin).json()["status"] == "pending"
        response = client.post(f"{API}/{queued['id']}/interrupt", headers=admin)
        assert response.status_code == 200 and response.json()["status"] == "interrupted"
        release.set()
        drain()
    assert all(wait(client, admin, b["id"])["status"] == "completed" for b in busy)
    after = client.get(f"{API}/{queued['id']}", headers=admin).json()
    assert after["status"] == "interrupted" and after["startedAt"] is None and after["recordCount"] is None


def test_a_finished_export_cannot_be_interrupted(
    client: TestClient, admin: dict[str, str], catalogue: list[str]
) -> None:
    done = run(client, admin, format="csv")
    response = client.post(f"{API}/{done['id']}/interrupt", headers=admin)
    assert response.status_code == 409
    assert "completed" in response.json()["error"]["message"]


def test_a_failing_storage_fails_the_export_with_an_errors_log(
    client: TestClient,
    admin: dict[str, str],
    catalogue: list[str],
    configure: Callable[..., None],
    moto_endpoint: str,
    bucket: str,
) -> None:
    configure(
        export_storage="s3",
        export_s3_bucket=bucket + "-gone",
        export_s3_endpoint_url=moto_endpoint,
        export_s3_region="us-east-1",
    )
    created = create(client, admin, format="csv")
    failed = wait(client, admin, created["id"])
    assert failed["status"] == "failed" and failed["failedAt"] and failed["completedAt"] is None
    assert list(failed["errorsLog"]) == ["StorageError"]
    message = failed["errorsLog"]["StorageError"]
    assert bucket + "-gone" in message and "SKUPORT_EXPORT_STORAGE" in message
    assert failed["downloadUrl"] is None
    assert client.get(f"{API}/{created['id']}/download", headers=admin).status_code == 409


def test_a_pipeline_error_fails_the_export_with_an_errors_log(
    client: TestClient, admin: dict[str, str], catalogue: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import skuport.exporting.pipeline as pipeline

    def timing_out(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("query timeout")

    monkeypatch.setattr(pipeline, "run_export", timing_out)
    failed = wait(client, admin, create(client, admin, format="csv")["id"])
    assert failed["status"] == "failed"
    assert failed["errorsLog"]["RuntimeError"].startswith("query timeout")
    assert "create the export again" in failed["errorsLog"]["RuntimeError"]


def test_concurrent_exports_each_get_their_own_file(
    client: TestClient, admin: dict[str, str], catalogue: list[str]
) -> None:
    add_many(30, brand="Bulk")
    requests = [
        ("csv", {"brand": "Bulk"}, 30),
        ("json", {"brand": "Ma Marque"}, 2),
        ("jsonl", {"brand": "Other"}, 1),
        ("xlsx", {"price": {"gte": 20, "lt": 25}}, 5),
    ]
    created = [create(client, admin, format=fmt, filters=filters) for fmt, filters, _n in requests]
    for (fmt, _filters, count), export in zip(requests, created, strict=True):
        done = wait(client, admin, export["id"])
        assert done["status"] == "completed" and done["recordCount"] == count
        content = client.get(f"{API}/{export['id']}/download", headers=admin).content
        assert len(READERS[fmt](content)) == count
    assert len({e["id"] for e in created}) == 4


# --- listing, roles, delete ------------------------------------------------------------------------


def test_listing_is_newest_first_with_filters(
    client: TestClient, admin: dict[str, str], catalogue: list[str]
) -> None:
    first = run(client, admin, format="csv", reference="batch-1")
    second = run(client, admin, format="json", reference="batch-2")
    third = run(client, admin, format="xml", reference="batch-1")
    listed = client.get(API, headers=admin).json()
    assert [e["id"] for e in listed["items"]] == [third["id"], second["id"], first["id"]]
    assert listed["total"] == 3 and listed["offset"] == 0 and listed["limit"] == 50
    by_ref = client.get(API, params={"reference": "batch-1"}, headers=admin).json()
    assert [e["id"] for e in by_ref["items"]] == [third["id"], first["id"]]
    page = client.get(API, params={"limit": 1, "offset": 1}, headers=admin).json()
    assert [e["id"] for e in page["items"]] == [second["id"]] and page["total"] == 3
    assert client.get(API, params={"status": "failed"}, headers=admin).json()["total"] == 0
    assert client.get(API, params={"status": "completed"}, headers=admin).json()["total"] == 3
    bad = client.get(API, params={"status": "done"}, headers=admin)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_error"
    assert client.get(API, params={"offset": 2**63}, headers=admin).status_code == 422
    assert client.get(API, params={"limit": 201}, headers=admin).status_code == 422


def test_viewers_may_export_and_users_see_only_their_own(
    client: TestClient, admin: dict[str, str], catalogue: list[str]
) -> None:
    viewer = make_user("user-viewer", "role-viewer")
    editor = make_user("user-editor", "role-editor")
    mine = run(client, viewer, format="csv", filters={"brand": "Other"})
    assert mine["createdBy"] == "user-viewer"
    assert len(read_csv(client.get(f"{API}/{mine['id']}/download", headers=viewer).content)) == 1
    theirs = run(client, editor, format="csv")
    # the editor neither sees nor touches the viewer's export
    assert client.get(f"{API}/{mine['id']}", headers=editor).status_code == 404
    assert client.get(f"{API}/{mine['id']}/download", headers=editor).status_code == 404
    assert client.post(f"{API}/{mine['id']}/interrupt", headers=editor).status_code == 404
    assert client.delete(f"{API}/{mine['id']}", headers=editor).status_code == 404
    assert [e["id"] for e in client.get(API, headers=editor).json()["items"]] == [theirs["id"]]
    # admins see everyone's
    assert {e["id"] for e in client.get(API, headers=admin).json()["items"]} == {mine["id"], theirs["id"]}
    assert client.get(f"{API}/{mine['id']}/download", headers=admin).status_code == 200
    assert client.get(API).status_code == 401


def test_delete_removes_the_file_and_the_row(
    client: TestClient, admin: dict[str, str], catalogue: list[str]
) -> None:
    done = run(client, admin, format="csv")
    path = _local_file(done["id"])
    response = client.delete(f"{API}/{done['id']}", headers=admin)
    assert response.status_code == 200 and response.json() == {"deleted": True}
    assert not path.exists()
    assert client.get(f"{API}/{done['id']}", headers=admin).status_code == 404
    assert client.get(signed_path(done["downloadUrl"])).status_code == 404
    assert client.delete(f"{API}/{done['id']}", headers=admin).status_code == 404


def test_deleting_a_running_export_cancels_it(
    client: TestClient, admin: dict[str, str], catalogue: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with gated_pipeline(monkeypatch) as (reached, release):
        created = create(client, admin, format="csv")
        assert reached.wait(10)
        assert client.delete(f"{API}/{created['id']}", headers=admin).status_code == 200
        release.set()
        drain()
    assert client.get(f"{API}/{created['id']}", headers=admin).status_code == 404
    from skuport.exports.storage import LocalStorage, get_storage

    storage = get_storage("local")
    assert isinstance(storage, LocalStorage)
    assert not (storage.root / created["id"]).exists()


@pytest.mark.parametrize("export_id", ["exp-nope", "exp-" + "x" * 300, "exp-%C3%A9"])
def test_unknown_export_is_a_404_envelope(client: TestClient, admin: dict[str, str], export_id: str) -> None:
    for method, path in [
        ("get", f"{API}/{export_id}"),
        ("get", f"{API}/{export_id}/download"),
        ("post", f"{API}/{export_id}/interrupt"),
        ("delete", f"{API}/{export_id}"),
    ]:
        response = client.request(method.upper(), path, headers=admin)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


def test_odd_query_values_are_clean_errors(
    client: TestClient, admin: dict[str, str], catalogue: list[str]
) -> None:
    assert client.get(API, params={"reference": "a\x00b"}, headers=admin).status_code == 400
    assert client.get(API, params={"reference": "x" * 256}, headers=admin).status_code == 422
    done = run(client, admin, format="csv")
    for query in (
        "expires=1&signature=%C3%A9%FF",
        "expires=%C3%A9&signature=ab",
        "expires=" + "9" * 5000 + "&signature=ab",
        "signature=ab",
    ):
        response = client.get(f"{API}/{done['id']}/download?{query}")
        assert response.status_code == 403, query
        assert response.json()["error"]["code"] == "invalid_signature"


# --- S3 storage end to end -------------------------------------------------------------------------


def test_exports_kept_in_s3(
    client: TestClient,
    admin: dict[str, str],
    catalogue: list[str],
    configure: Callable[..., None],
    moto_endpoint: str,
    bucket: str,
) -> None:
    import boto3

    configure(
        export_storage="s3",
        export_s3_bucket=bucket,
        export_s3_endpoint_url=moto_endpoint,
        export_s3_region="us-east-1",
        export_s3_prefix="skuport/one-off",
    )
    done = run(client, admin, format="xlsx")
    raw = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    keys = [o["Key"] for o in raw.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys == [f"skuport/one-off/{done['id']}/{done['id']}.xlsx"]
    response = client.get(signed_path(done["downloadUrl"]))
    assert response.status_code == 200
    assert response.headers["content-disposition"] == f'attachment; filename="{done["id"]}.xlsx"'
    assert int(response.headers["content-length"]) == done["fileSize"]
    assert len(READERS["xlsx"](response.content)) == 3
    assert client.delete(f"{API}/{done['id']}", headers=admin).status_code == 200
    assert raw.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


# --- OpenAPI ---------------------------------------------------------------------------------------


def test_openapi_declares_the_download_errors(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    download = spec["paths"]["/api/v1/exports/{export_id}/download"]["get"]
    assert {"200", "401", "403", "404", "409", "410"} <= set(download["responses"])
    assert "text/csv" in download["responses"]["200"]["content"]
    create_op = spec["paths"]["/api/v1/exports"]["post"]
    assert "202" in create_op["responses"] and "429" in create_op["responses"]
