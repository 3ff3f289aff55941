"""Service pieces below the API: the spec it builds."""

from __future__ import annotations

from skuport.exports import service
from skuport.exports.models import Export


def test_build_spec_passes_every_option_to_the_pipeline() -> None:
    export = Export(
        id="exp-a",
        user_id="u",
        format="xml",
        schema_id="schema-apparel",
        catalog_id="catalog-webshop",
        include_variants=False,
        lifecycle_state_ids=["state-draft"],
        filters={"sku_eq": "A"},
        fields=["sku"],
        includes=["categories", "lifecycleState"],
        dimension_scope={"dim-language": "seg-da"},
        header_language="seg-da",
        compress=True,
        dry_data=True,
    )
    spec = service.build_spec(export)
    assert (spec.format, spec.schema_id, spec.catalog_id, spec.include_variants) == (
        "xml",
        "schema-apparel",
        "catalog-webshop",
        False,
    )
    # includes: lifecycleState adds its column to the named fields
    assert spec.lifecycle_state_ids == ("state-draft",) and spec.fields == ("sku", "lifecycleStateId")
    assert spec.filters == {"sku_eq": "A"} and spec.dimension_scope == {"dim-language": "seg-da"}
    assert spec.includes == ("categories",)  # lifecycleState is always a column
    assert spec.header_language == "seg-da" and spec.compress and spec.dry_data
