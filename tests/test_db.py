"""Database layer: concurrent writers on SQLite never fail with 'database is locked'."""

from __future__ import annotations

import threading

import pytest

from skuport.db import session_scope
from skuport.records import service


@pytest.mark.usefixtures("world")
def test_concurrent_read_then_write_transactions_do_not_fail() -> None:
    with session_scope() as session:
        ids = [
            service.create_record(session, schema_id="schema-apparel", values={}, user_id="user-admin").id
            for _ in range(3)
        ]
    errors: list[BaseException] = []

    def writer(record_id: str) -> None:
        try:
            for i in range(40):
                # Reads the record, then writes: the pattern that fails under deferred BEGIN.
                with session_scope() as session:
                    service.update_values(
                        session,
                        record_id=record_id,
                        values={"brand": [{"scope": {}, "value": f"m{i}"}]},
                        user_id="user-admin",
                    )
        except BaseException as exc:  # pragma: no cover - the assertion reports it
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(rid,)) for rid in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with session_scope(write=False) as session:
        for rid in ids:
            assert service.loads_values(service.get_record(session, record_id=rid))["brand"] == [
                {"scope": {}, "value": "m39"}
            ]


def test_request_transaction_commits_before_the_response_is_sent(world: None, admin: dict[str, str]) -> None:
    from fastapi.testclient import TestClient
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    from skuport.app import create_app

    events: list[str] = []
    app = create_app()

    async def recorder(scope, receive, send):  # type: ignore[no-untyped-def]
        async def spy(message):  # type: ignore[no-untyped-def]
            if message["type"] == "http.response.start":
                events.append("response")
            await send(message)

        await app(scope, receive, spy)

    def committed(_session: Session) -> None:
        events.append("commit")

    event.listen(Session, "after_commit", committed)
    try:
        with TestClient(recorder) as client:  # type: ignore[arg-type]
            response = client.post(
                "/api/v1/records", json={"schemaId": "schema-apparel", "values": {}}, headers=admin
            )
    finally:
        event.remove(Session, "after_commit", committed)
    assert response.status_code == 201
    assert events[-2:] == ["commit", "response"]
