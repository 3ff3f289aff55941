"""The demo world the API pages use, so every curl example of the seeds works as written."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from skuport.auth.roles import RoleId
from skuport.auth.service import ensure_builtin_roles, upsert_user
from skuport.catalog.models import (
    Attribute,
    Catalog,
    Category,
    Dimension,
    LifecycleState,
    Schema,
    Segment,
    Transition,
    Workflow,
)
from skuport.db import session_scope
from skuport.demo_options import COLORS, MATERIALS, OPTION_LABELS, SIZES

log = logging.getLogger(__name__)

LANGUAGES = {"seg-en": "English", "seg-da": "Danish", "seg-de": "German"}
MARKETS = {"seg-dk": "Denmark", "seg-de": "Germany"}


def _labels(en: str, da: str, de: str) -> dict[str, str]:
    return {"seg-en": en, "seg-da": da, "seg-de": de}


# alias, (en, da, de) labels, dataType, required, dimensionIds, validation, guard
APPAREL_ATTRIBUTES: list[
    tuple[str, tuple[str, str, str], str, bool, list[str], dict[str, Any], dict[str, Any] | None]
] = [
    (
        "product-name",
        ("Product name", "Produktnavn", "Produktname"),
        "text",
        True,
        ["dim-language"],
        {"maxLength": 200},
        None,
    ),
    ("sku", ("SKU", "Varenummer", "Artikelnummer"), "text", True, [], {"pattern": r"[A-Z0-9-]{3,40}"}, None),
    ("price", ("Price", "Pris", "Preis"), "number", True, ["dim-market"], {"min": 0}, None),
    (
        "description",
        ("Description", "Beskrivelse", "Beschreibung"),
        "textarea",
        False,
        ["dim-language"],
        {"maxLength": 5000},
        None,
    ),
    ("material", ("Material", "Materiale", "Material"), "select", False, [], {"options": MATERIALS}, None),
    ("brand", ("Brand", "Maerke", "Marke"), "text", False, [], {}, None),
    ("color", ("Color", "Farve", "Farbe"), "select", False, [], {"options": COLORS}, None),
    ("sizes", ("Sizes", "Stoerrelser", "Groessen"), "multiselect", False, [], {"options": SIZES}, None),
    (
        "weight",
        ("Weight (g)", "Vaegt (g)", "Gewicht (g)"),
        "integer",
        False,
        [],
        {"min": 0, "max": 100000},
        None,
    ),
    ("ean", ("EAN", "EAN", "EAN"), "text", False, [], {"pattern": r"\d{13}"}, None),
    ("release-date", ("Release date", "Udgivelsesdato", "Erscheinungsdatum"), "date", False, [], {}, None),
    ("in-stock", ("In stock", "På lager", "Auf Lager"), "boolean", False, ["dim-market"], {}, None),
    ("product-url", ("Product URL", "Produkt-URL", "Produkt-URL"), "url", False, ["dim-market"], {}, None),
    ("has-hood", ("Has hood", "Har haette", "Hat Kapuze"), "boolean", False, [], {}, None),
    (
        "hood-type",
        ("Hood type", "Haettetype", "Kapuzentyp"),
        "select",
        True,
        [],
        {"options": ["fixed", "detachable", "packable"]},
        {"attributeAlias": "has-hood", "value": True},
    ),
    # The field names seed 003's example exports (with ean, price and brand above).
    ("title", ("Title", "Titel", "Titel"), "text", False, [], {"maxLength": 200}, None),
    ("stock", ("Stock", "Lager", "Bestand"), "integer", False, [], {"min": 0}, None),
]

STATES = [
    ("state-draft", "Draft", True, []),
    ("state-review", "Review", False, ["description"]),
    ("state-published", "Published", False, ["description", "material"]),
]
TRANSITIONS = [
    (
        "trans-draft-to-review",
        "state-draft",
        "state-review",
        "Submit for review",
        ["role-admin", "role-editor"],
        False,
    ),
    (
        "trans-review-to-published",
        "state-review",
        "state-published",
        "Publish",
        ["role-admin", "role-editor"],
        True,
    ),
    ("trans-review-to-draft", "state-review", "state-draft", "Send back to draft", ["role-admin"], False),
    ("trans-published-to-draft", "state-published", "state-draft", "Unpublish", ["role-admin"], False),
]
CATEGORIES = [
    ("cat-apparel", None, "Apparel", 0),
    ("cat-outerwear", "cat-apparel", "Outerwear", 0),
    ("cat-jackets", "cat-outerwear", "Jackets", 0),
    ("cat-knitwear", "cat-apparel", "Knitwear", 1),
    ("cat-collections", None, "Collections", 1),
    ("cat-spring-collection", "cat-collections", "Spring collection", 0),
]


def _apparel_schema(session: Session) -> None:
    """The apparel schema; attributes (and option labels) the demo world gained later are added to a data
    dir made by an earlier version."""
    schema = session.get(Schema, "schema-apparel")
    if schema is None:
        schema = Schema(
            id="schema-apparel",
            name="Apparel",
            description="Clothing and outerwear",
            workflow_id="wf-apparel",
        )
        session.add(schema)
    known = {attribute.alias for attribute in schema.attributes}
    for attribute in schema.attributes:  # option labels came later too (on selects only)
        if attribute.alias in OPTION_LABELS and attribute.data_type in ("select", "multiselect"):
            attribute.option_labels = attribute.option_labels or OPTION_LABELS[attribute.alias]
    for i, (alias, labels, dtype, required, dims, rules, guard) in enumerate(APPAREL_ATTRIBUTES):
        if alias not in known:
            schema.attributes.append(
                Attribute(
                    id=f"attr-{alias}",
                    alias=alias,
                    name=labels[0],
                    labels=_labels(*labels),
                    data_type=dtype,
                    required=required,
                    dimension_ids=dims,
                    validation=rules,
                    guard=guard,
                    sort_order=i,
                    option_labels=OPTION_LABELS.get(alias, {}),
                )
            )


def load_seed_world(session: Session) -> None:
    """Create (idempotently) the catalogue model and users the seeds' examples rely on."""
    ensure_builtin_roles(session)
    upsert_user(session, user_id="user-admin", name="Admin", role_ids=[RoleId.ADMIN])
    upsert_user(session, user_id="user-editor", name="Editor", role_ids=[RoleId.EDITOR])
    upsert_user(session, user_id="user-viewer", name="Viewer", role_ids=[RoleId.VIEWER])
    upsert_user(session, user_id="user-runner", name="Export runner", role_ids=[RoleId.RUNNER])

    for dim_id, name, segments, order in (
        ("dim-language", "Language", LANGUAGES, 0),
        ("dim-market", "Market", MARKETS, 1),
    ):
        if session.get(Dimension, dim_id) is None:
            session.add(
                Dimension(
                    id=dim_id,
                    name=name,
                    sort_order=order,
                    segments=[
                        Segment(id=seg, name=label, sort_order=i)
                        for i, (seg, label) in enumerate(segments.items())
                    ],
                )
            )

    if session.get(Workflow, "wf-apparel") is None:
        session.add(
            Workflow(
                id="wf-apparel",
                name="Apparel lifecycle",
                states=[
                    LifecycleState(id=s, name=n, is_initial=initial, required_attributes=req, sort_order=i)
                    for i, (s, n, initial, req) in enumerate(STATES)
                ],
                transitions=[
                    Transition(
                        id=t,
                        from_state_id=f,
                        to_state_id=to,
                        name=n,
                        allowed_role_ids=roles,
                        requires_completeness=rc,
                        sort_order=i,
                    )
                    for i, (t, f, to, n, roles, rc) in enumerate(TRANSITIONS)
                ],
            )
        )
        session.flush()

    _apparel_schema(session)

    if session.get(Catalog, "catalog-webshop") is None:
        session.add(Catalog(id="catalog-webshop", name="Webshop", description="Webshop navigation"))
        session.flush()
        for cat_id, parent, name, order in CATEGORIES:
            session.add(
                Category(
                    id=cat_id, catalog_id="catalog-webshop", parent_id=parent, name=name, sort_order=order
                )
            )
    session.flush()


SEED_RECORDS: list[dict[str, Any]] = [
    {
        "id": "ent-xK9mP2vL",
        "values": {
            "product-name": [
                {"scope": {}, "value": "Coastal Windbreaker"},
                {"scope": {"dim-language": "seg-da"}, "value": "Kyst Vindjakke"},
            ],
            "sku": [{"scope": {}, "value": "CW-001"}],
            "price": [{"scope": {}, "value": 129.99}],
        },
        "categories": [("cat-outerwear", 0), ("cat-spring-collection", 3)],
    },
    {
        "id": "ent-coastal-wb",
        "values": {
            "product-name": [
                {"scope": {}, "value": "Coastal Windbreaker"},
                {"scope": {"dim-language": "seg-da"}, "value": "Kyst Vindjakke"},
            ],
            "sku": [{"scope": {}, "value": "CW-001"}],
            "price": [{"scope": {}, "value": 129.99}, {"scope": {"dim-market": "seg-dk"}, "value": 969}],
            "brand": [{"scope": {}, "value": "Ma Marque"}],
            "ean": [{"scope": {}, "value": "5701234567892"}],
            "title": [{"scope": {}, "value": "Coastal Windbreaker"}],
            "stock": [{"scope": {}, "value": 42}],
        },
        "categories": [("cat-jackets", 0)],
    },
]


def load_seed_records(session: Session) -> None:
    """Create the records the seeds' examples name (idempotently), through the records service."""
    from skuport.records import service as records

    for spec in SEED_RECORDS:
        if records.find_record(session, record_id=spec["id"]) is not None:
            continue
        record = records.create_record(
            session,
            schema_id="schema-apparel",
            values=spec["values"],
            user_id="user-admin",
            record_id=spec["id"],
            enforce_plan_limit=False,
        )
        for category_id, order in spec["categories"]:
            records.assign_category(
                session, record_id=record.id, category_id=category_id, sort_order=order, user_id="user-admin"
            )


SEED_JOB: dict[str, Any] = {
    "id": "expjob-nightly-feed",
    "name": "Nightly Product Feed",
    "description": "English product catalog for the webshop",
    "destinationType": "s3",
    "destinationConfig": {"bucket": "sigma-exports", "path": "feeds/products/", "region": "eu-west-1"},
    "format": "csv",
    "schemaId": "schema-apparel",
    "dimensionScope": {"dim-language": "seg-en"},
    "schedule": "0 2 * * *",
    "includeVariants": True,
    "compress": True,
    "filenameTemplate": "products-{date}.csv.gz",
    "active": True,
}

SEED_RUNS: list[dict[str, Any]] = [
    {
        "id": "run-20260306-020000",
        "status": "failed",
        "startedAt": "2026-03-06T02:00:00.000Z",
        "completedAt": "2026-03-06T02:00:03.150Z",
        "error": (
            "S3 PutObject failed: Access Denied (403). Check IAM permissions for bucket 'sigma-exports'."
        ),
    },
    {
        "id": "run-20260307-020000",
        "status": "success",
        "startedAt": "2026-03-07T02:00:00.000Z",
        "completedAt": "2026-03-07T02:00:12.880Z",
        "recordCount": 345,
        "fileSize": 83540,
        "destinationPath": "s3://sigma-exports/feeds/products/products-2026-03-07.csv.gz",
    },
    {
        "id": "run-20260308-020000",
        "status": "success",
        "startedAt": "2026-03-08T02:00:00.000Z",
        "completedAt": "2026-03-08T02:00:14.320Z",
        "recordCount": 347,
        "fileSize": 84210,
        "destinationPath": "s3://sigma-exports/feeds/products/products-2026-03-08.csv.gz",
    },
]


def load_seed_jobs(session: Session) -> None:
    """Create the export job of seed 000 and its run history (idempotently)."""
    from skuport.jobs import service as jobs
    from skuport.jobs.models import ExportJob
    from skuport.jobs.schemas import JobCreate, RunCreate

    if session.get(ExportJob, SEED_JOB["id"]) is not None:
        return
    jobs.create_job(session, data=JobCreate.model_validate(SEED_JOB), user_id="user-admin")
    for run in SEED_RUNS:
        jobs.record_external_run(session, job_id=SEED_JOB["id"], data=RunCreate.model_validate(run))


def load_demo(*, records: int = 0, seed: int = 42) -> None:
    """Load the seed world, records and export job, then ``records`` synthetic products."""
    with session_scope() as session:
        load_seed_world(session)
        load_seed_records(session)
        load_seed_jobs(session)
    if records:
        from skuport.demo_synthetic import generate

        generate(count=records, seed=seed)
    log.info("demo data loaded")
