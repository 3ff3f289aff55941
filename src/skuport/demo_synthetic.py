"""Synthetic apparel products for ``skuport demo --records N``: realistic, reproducible, bulk-inserted.

Every product of schema-apparel has all 15 attributes (names and descriptions in three languages, a
global price plus one per market, stock and URLs per market); about one product in four gets 2-4 variants
(``parent_id`` set, their own size, colour, SKU, EAN, price and stock). Values are stored exactly as the
records service stores them (normalised, attribute order, empty values dropped) together with their
value-index rows, in batches of Core ``executemany`` (SQLite, one transaction) or ``COPY`` (PostgreSQL).
"""

from __future__ import annotations

import datetime as dt
import random
import string
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
from sqlalchemy import Connection, func, insert, select, text

from skuport.db import get_engine
from skuport.demo_options import COLORS, MATERIALS, SIZES
from skuport.records.cells import cell_keys, ensure_slots, load_slots, positional_text
from skuport.records.models import Record, RecordCategory
from skuport.records.values import cells_of, index_rows

SCHEMA_ID = "schema-apparel"
BATCH = 5000
_BASE62 = string.digits + string.ascii_letters

_ADJECTIVES = [
    ("Coastal", "Kyst", "Kuesten"),
    ("Alpine", "Alpin", "Alpen"),
    ("Urban", "By", "Stadt"),
    ("Nordic", "Nordisk", "Nordische"),
    ("Storm", "Storm", "Sturm"),
    ("Trail", "Spor", "Trail"),
    ("Harbour", "Havne", "Hafen"),
    ("Summit", "Top", "Gipfel"),
    ("Forest", "Skov", "Wald"),
    ("Island", "Oe", "Insel"),
]
_NOUNS = [
    ("windbreaker", "vindjakke", "Windjacke"),
    ("parka", "parka", "Parka"),
    ("rain jacket", "regnjakke", "Regenjacke"),
    ("fleece", "fleece", "Fleecejacke"),
    ("knit sweater", "strikketroeje", "Strickpullover"),
    ("softshell", "softshell", "Softshelljacke"),
    ("vest", "vest", "Weste"),
    ("hoodie", "haettetroeje", "Kapuzenpullover"),
]
_BRANDS = ["Ma Marque", "Nordkyst", "Fjeldgear", "Havbris", "Klitmoeller Co."]
_USES = [
    ("windy days on the coast", "blaesende dage ved kysten", "windige Tage an der Kueste"),
    ("city commutes in the rain", "bypendling i regnvejr", "Pendeln in der Stadt bei Regen"),
    ("long hikes in the mountains", "lange vandreture i bjergene", "lange Wanderungen in den Bergen"),
    ("cold mornings by the harbour", "kolde morgener ved havnen", "kalte Morgen am Hafen"),
]
_STATES = [("state-draft", 0.3), ("state-review", 0.2), ("state-published", 0.5)]
_CATEGORIES = ["cat-jackets", "cat-outerwear", "cat-knitwear", "cat-spring-collection"]
_LANGS = ("seg-en", "seg-da", "seg-de")
_MARKETS = ("seg-dk", "seg-de")


def _lang(values: tuple[str, str, str]) -> list[dict[str, Any]]:
    return [{"scope": {"dim-language": lang}, "value": v} for lang, v in zip(_LANGS, values, strict=True)]


def _market(values: tuple[Any, Any]) -> list[dict[str, Any]]:
    return [{"scope": {"dim-market": m}, "value": v} for m, v in zip(_MARKETS, values, strict=True)]


def _one(value: Any) -> list[dict[str, Any]]:
    return [{"scope": {}, "value": value}]


def _ean(rng: random.Random) -> str:
    digits = [rng.randrange(10) for _ in range(12)]
    check = (10 - sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10) % 10
    return "".join(map(str, digits)) + str(check)


def product_values(rng: random.Random, sku: str) -> dict[str, list[dict[str, Any]]]:
    """Values of one product, normalised as the records service stores them."""
    adjective, noun = rng.choice(_ADJECTIVES), rng.choice(_NOUNS)
    names = (f"{adjective[0]} {noun[0]}", f"{adjective[1]} {noun[1]}", f"{adjective[2]} {noun[2]}")
    material = rng.choice(MATERIALS)
    use = rng.choice(_USES)
    hooded = rng.random() < 0.6
    descriptions = (
        f"A {material.lower()} {noun[0]} made for {use[0]}.",
        f"En {noun[1]} i {material.lower()} lavet til {use[1]}.",
        f"Eine {noun[2]} aus {material} fuer {use[2]}.",
    )
    price = round(rng.uniform(19, 399), 0) + 0.95
    first = rng.randrange(len(SIZES) - 2)
    sizes = SIZES[first : first + rng.randint(2, len(SIZES) - first)]
    values: dict[str, list[dict[str, Any]]] = {
        "product-name": _lang(names),
        "sku": _one(sku),
        "price": [{"scope": {}, "value": price}, *_market((round(price * 7.46), price))],
        "description": _lang(descriptions),
        "material": _one(material),
        "brand": _one(rng.choice(_BRANDS)),
        "color": _one(rng.choice(COLORS)),
        "sizes": _one(sizes),
        "weight": _one(rng.randint(150, 2400)),
        "ean": _one(_ean(rng)),
        "release-date": _one((dt.date(2023, 1, 1) + dt.timedelta(days=rng.randrange(1100))).isoformat()),
        "in-stock": _market((rng.random() < 0.8, rng.random() < 0.7)),
        "product-url": _market(
            (f"https://shop.example.com/dk/p/{sku.lower()}", f"https://shop.example.com/de/p/{sku.lower()}")
        ),
        "has-hood": _one(hooded),
    }
    if hooded:
        values["hood-type"] = _one(rng.choice(["fixed", "detachable", "packable"]))
    return values


def variant_values(
    rng: random.Random, parent: dict[str, list[dict[str, Any]]], size: str, sku: str
) -> dict[str, list[dict[str, Any]]]:
    """Values of one variant: its own size, colour, SKU, EAN, price and stock."""
    price = parent["price"][0]["value"]
    return {
        "sku": _one(sku),
        "price": [{"scope": {}, "value": price}, *_market((round(price * 7.46), price))],
        "color": _one(rng.choice(COLORS)),
        "sizes": _one([size]),
        "ean": _one(_ean(rng)),
        "in-stock": _market((rng.random() < 0.8, rng.random() < 0.7)),
    }


def _state(rng: random.Random) -> str:
    roll, acc = rng.random(), 0.0
    for state, share in _STATES:
        acc += share
        if roll < acc:
            return state
    return _STATES[-1][0]


Row = tuple[dict[str, Any], list[tuple[int, str, int]]]


def records(count: int, *, seed: int, first_pk: int) -> Iterator[Row]:
    """(record row, category rows) of ``count`` synthetic records, products followed by their variants."""
    rng = random.Random(seed)
    ids = random.Random(f"{seed}:{first_pk}")
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    pk, made = first_pk, 0
    while made < count:
        product_id = "ent-" + "".join(ids.choices(_BASE62, k=10))
        sku = f"SP-{ids.randrange(10**8):08d}"
        values = product_values(rng, sku)
        created = start + dt.timedelta(seconds=rng.randrange(300 * 86400))
        updated = created + dt.timedelta(seconds=rng.randrange(30 * 86400))
        row = {
            "pk": pk,
            "id": product_id,
            "schema_id": SCHEMA_ID,
            "parent_id": None,
            "lifecycle_state_id": _state(rng),
            "values": values,
            "created_at": created,
            "updated_at": updated,
            "created_by": "user-admin",
            "updated_by": "user-admin",
        }
        cats = rng.sample(_CATEGORIES, rng.randint(1, 2))
        yield row, [(pk, c, i) for i, c in enumerate(cats)]
        pk += 1
        made += 1
        if rng.random() < 0.25:
            sizes = values["sizes"][0]["value"]
            for size in rng.sample(sizes, min(len(sizes), rng.randint(2, 4))):
                if made >= count:
                    break
                child = {
                    **row,
                    "pk": pk,
                    "id": "ent-" + "".join(ids.choices(_BASE62, k=10)),
                    "parent_id": product_id,
                    "values": variant_values(rng, values, size, f"{sku}-{size}"),
                }
                yield child, []
                pk += 1
                made += 1


def _flush(conn: Connection, rows: list[dict[str, Any]], cats: list[tuple[int, str, int]]) -> None:
    value_rows = [(row["pk"], a, k, t, n) for row in rows for a, k, t, n in index_rows(row["values"])]
    slots = load_slots(conn)
    for row in rows:
        values = row.pop("values")
        cells = cells_of(values)
        row["values_json"] = orjson.dumps(values).decode()
        row["cells_json"] = orjson.dumps(cells).decode()
        known = slots.setdefault(row["schema_id"], {})
        row["cells_text"] = positional_text(
            cells, ensure_slots(conn, row["schema_id"], cell_keys(cells), known)
        )
    conn.execute(insert(Record), rows)
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        with raw.cursor() as cur:  # type: ignore[union-attr]
            with cur.copy(
                "COPY record_values (record_pk, attribute, scope_key, value_text, value_num) FROM STDIN"
            ) as copy:
                for value_row in value_rows:
                    copy.write_row(value_row)
    else:
        conn.exec_driver_sql(
            "INSERT INTO record_values (record_pk, attribute, scope_key, value_text, "
            "value_num) VALUES (?, ?, ?, ?, ?)",
            value_rows,
        )
    if cats:
        conn.execute(
            insert(RecordCategory), [{"record_pk": p, "category_id": c, "sort_order": o} for p, c, o in cats]
        )


def generate(*, count: int, seed: int = 42, echo: Callable[[str], None] | None = None) -> int:
    """Add ``count`` synthetic schema-apparel records (the seed world must be loaded); return how many."""
    echo = echo or (lambda line: print(line, file=sys.stderr, flush=True))
    engine = get_engine()
    began = time.perf_counter()
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            # A large page cache keeps the value index's B-trees in memory while they grow.
            conn.exec_driver_sql("PRAGMA cache_size = -262144")
        first_pk = int(conn.execute(select(func.coalesce(func.max(Record.pk), 0))).scalar_one()) + 1
        rows: list[dict[str, Any]] = []
        cats: list[tuple[int, str, int]] = []
        made = 0
        for row, row_cats in records(count, seed=seed, first_pk=first_pk):
            rows.append(row)
            cats.extend(row_cats)
            if len(rows) >= BATCH:
                _flush(conn, rows, cats)
                made += len(rows)
                rows, cats = [], []
                if made % 50_000 == 0 or made == count:
                    elapsed = time.perf_counter() - began
                    echo(f"synthetic records: {made:,}/{count:,} ({made / elapsed:,.0f}/s)")
        if rows:
            _flush(conn, rows, cats)
            made += len(rows)
        if conn.dialect.name == "postgresql":
            conn.execute(
                text("SELECT setval(pg_get_serial_sequence('records', 'pk'), (SELECT max(pk) FROM records))")
            )
            # Fresh statistics, or the planner keeps its empty-table plans until autovacuum comes by.
            conn.execute(text("ANALYZE records, record_values, record_categories"))
        else:
            conn.exec_driver_sql("PRAGMA cache_size = -2000")  # back to SQLite's default
    if engine.dialect.name == "sqlite":
        # Move the bulk load from the write-ahead log into the database file: readers otherwise look
        # every page up in a log of several GB until a checkpoint happens to run.
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    elapsed = time.perf_counter() - began
    echo(f"synthetic records: {made:,} in {elapsed:.1f} s")
    return made
