"""A client generated from /openapi.json by openapi-python-client, used against a live server.

The generator lives in its own virtual environment (``scripts/test-deps.sh`` puts it in
``.cache/openapi-client``): its pins clash with skuport's own (typer). Generation must print no warning.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.live import LiveServer, suite_server
from tests.seeds import SEED_CREATE

REPO = Path(__file__).resolve().parents[1]
GENERATOR = Path(
    os.environ.get(
        "SKUPORT_TEST_OPENAPI_CLIENT", REPO / ".cache" / "openapi-client" / "bin" / "openapi-python-client"
    )
)


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with suite_server() as live:
        yield live


@pytest.fixture(scope="module")
def generated(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    assert GENERATOR.exists(), f"{GENERATOR} is missing: run scripts/test-deps.sh (make test does)"
    folder = tmp_path_factory.mktemp("client")
    (folder / "openapi.json").write_bytes(httpx.get(f"{server.url}/openapi.json", timeout=30).content)
    env = {**os.environ, "PATH": f"{GENERATOR.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(
        [str(GENERATOR), "generate", "--path", "openapi.json", "--meta", "none"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "warning" not in output.lower(), output
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module("skuport_client")
    finally:
        sys.path.remove(str(folder))
        for name in [n for n in sys.modules if n == "skuport_client" or n.startswith("skuport_client.")]:
            del sys.modules[name]


def module(name: str) -> Any:
    return importlib.import_module(f"skuport_client.{name}")


@pytest.fixture(scope="module")
def client(generated: ModuleType, server: LiveServer) -> Any:
    return generated.AuthenticatedClient(
        base_url=server.url, token=server.token, raise_on_unexpected_status=True
    )


def test_list_records_with_a_filter(client: Any, server: LiveServer) -> None:
    records = module("api.records.list_records_api_v1_records_get")
    filters = module("models.list_records_api_v1_records_get_filter").ListRecordsApiV1RecordsGetFilter
    record_list = module("models.record_list").RecordList
    # curl's answer: the wire form of the deep object
    expected = httpx.get(
        f"{server.url}/api/v1/records",
        params={"filter[brand]": "Ma Marque"},
        headers=server.headers,
        timeout=30,
    ).json()["total"]
    assert expected == 1
    # openapi-python-client 0.29 ignores style: deepObject and puts the object's keys in the query as they
    # are; keys in their wire form are sent as asked
    found = records.sync(client=client, filter_=filters.from_dict({"filter[brand]": "Ma Marque"}))
    assert isinstance(found, record_list) and found.total == expected
    assert found.items[0].id == "ent-coastal-wb"
    # the object's bare keys would be ?brand=…: refused by name, never the whole catalogue
    refused = records.sync(client=client, filter_=filters.from_dict({"brand": "Ma Marque"}))
    assert refused.error.code == "unknown_parameter" and "brand" in refused.error.message


def test_create_and_read_a_job_and_its_runs(client: Any) -> None:
    jobs = module("api.export_jobs")
    job_create = module("models.job_create").JobCreate
    job_read = module("models.job_read").JobRead
    run_read = module("models.run_read").RunRead
    created = importlib.import_module(f"{jobs.__name__}.create_export_job_api_v1_export_jobs_post").sync(
        client=client, body=job_create.from_dict({**SEED_CREATE, "name": "Generated client feed"})
    )
    assert isinstance(created, job_read) and created.name == "Generated client feed"
    read = importlib.import_module(f"{jobs.__name__}.get_export_job_api_v1_export_jobs_job_id_get").sync(
        client=client, job_id=created.id
    )
    assert isinstance(read, job_read) and read.schedule == "0 2 * * *"
    runs = importlib.import_module(f"{jobs.__name__}.list_job_runs_api_v1_export_jobs_job_id_runs_get").sync(
        client=client, job_id="expjob-nightly-feed"
    )
    assert [type(r) for r in runs] == [run_read] * 3
    assert [r.status for r in runs] == ["success", "success", "failed"]
    assert runs[0].record_count == 347 and runs[2].error.startswith("S3 PutObject failed")


def test_a_one_off_export_and_its_bytes(client: Any) -> None:
    create = module("api.exports.create_export_api_v1_exports_post")
    get = module("api.exports.get_export_api_v1_exports_export_id_get")
    download = module("api.exports.download_export_api_v1_exports_export_id_download_get")
    export_create = module("models.export_create").ExportCreate
    body = export_create.from_dict(
        {
            "format": "csv",
            "fields": ["sku", "title", "stock"],
            "filters": {"brand": "Ma Marque"},
            "dimensionScope": {},
        }
    )
    created = create.sync(client=client, body=body)
    for _ in range(300):
        export = get.sync(client=client, export_id=created.id)
        if export.status == "completed":
            break
        time.sleep(0.1)
    assert export.status == "completed" and export.record_count == 1
    file = download.sync(client=client, export_id=created.id)
    assert file.payload.read() == b"sku,title,stock\r\nCW-001,Coastal Windbreaker,42\r\n"
