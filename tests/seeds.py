"""The examples of the seed pages, shared by the in-process and the live-server tests."""

from __future__ import annotations

# Seed 000: the body of "Create a nightly S3 export", the response's field order, the PUT example.
SEED_CREATE = {
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
SEED_KEYS = [
    "id",
    "name",
    "description",
    "destinationType",
    "destinationConfig",
    "format",
    "schemaId",
    "dimensionScope",
    "schedule",
    "includeVariants",
    "compress",
    "filenameTemplate",
    "active",
    "createdAt",
    "updatedAt",
]
SEED_PUT = {
    "name": "Nightly Product Feed (v2)",
    "schedule": "0 3 * * *",
    "compress": False,
    "filenameTemplate": "products-{date}.csv",
}
