"""Catalogue service functions, on a real database session."""

from __future__ import annotations

import pytest
from sqlalchemy import insert

from skuport.catalog import service
from skuport.catalog.models import Category, LifecycleState, Segment, Workflow
from skuport.catalog.schemas import (
    AttributeCreate,
    AttributeUpdate,
    CatalogCreate,
    CategoryCreate,
    CategoryUpdate,
    DimensionCreate,
    DimensionUpdate,
    SchemaCreate,
    SegmentIn,
    StateIn,
    WorkflowCreate,
    WorkflowUpdate,
)
from skuport.db import session_scope
from skuport.errors import Conflict, NotFound, ValidationFailed
from skuport.records.values import DataType
from tests.catalog.helpers import add_record


def _dimension(dim_id: str, *segments: str) -> None:
    with session_scope() as session:
        service.create_dimension(
            session,
            data=DimensionCreate(
                id=dim_id, name=dim_id, segments=[SegmentIn(id=s, name=s) for s in segments]
            ),
        )


def _keep_segments(dim_id: str, *segments: str) -> None:
    with session_scope() as session:
        service.update_dimension(
            session,
            dimension_id=dim_id,
            data=DimensionUpdate(segments=[SegmentIn(id=s, name=s) for s in segments]),
        )


def test_segments_by_dimension(world: None) -> None:
    _dimension("dim-empty")
    with session_scope() as session:
        assert service.segments_by_dimension(session) == {
            "dim-language": {"seg-en", "seg-da", "seg-de"},
            "dim-market": {"seg-dk", "seg-de"},
            "dim-empty": set(),
        }


def test_get_schema(world: None) -> None:
    with session_scope() as session:
        schema = service.get_schema(session, schema_id="schema-apparel")
        assert schema.workflow_id == "wf-apparel"
        assert [a.alias for a in schema.attributes][:2] == ["product-name", "sku"]
        with pytest.raises(NotFound, match="schema-missing"):
            service.get_schema(session, schema_id="schema-missing")
        with pytest.raises(NotFound):
            service.get_schema(session, schema_id="schema-\x00")


def test_every_data_type_has_its_rules() -> None:
    assert set(service.RULES_BY_TYPE) == set(DataType)


def test_segment_match_treats_underscore_literally(db: str) -> None:
    # Given a value scoped to seg-xay, which a LIKE on 'seg-x_y' would also match
    _dimension("dim-z", "seg-x_y", "seg-xay")
    _schema_with_record("dim-w=seg-1&dim-z=seg-xay")
    # When seg-x_y is removed, then nothing uses it
    _keep_segments("dim-z", "seg-xay")
    # But seg-xay itself is in use
    with pytest.raises(Conflict) as caught:
        _keep_segments("dim-z")
    assert caught.value.code == "in_use"


def _schema_with_record(scope_key: str) -> None:
    with session_scope() as session:
        service.create_schema(
            session,
            data=SchemaCreate(
                id="schema-s",
                name="S",
                attributes=[AttributeCreate(alias="a", name="A", data_type=DataType.TEXT)],
            ),
        )
    add_record("schema-s", [("a", scope_key, "x")], state=None)


def test_dimension_match_stops_at_the_equals_sign(db: str) -> None:
    # Given values scoped by dim-ab only
    _dimension("dim-a")
    _dimension("dim-ab", "seg-1")
    _schema_with_record("dim-ab=seg-1")
    # Then dim-a can go, dim-ab cannot
    with session_scope() as session:
        service.delete_dimension(session, dimension_id="dim-a")
    with session_scope() as session, pytest.raises(Conflict, match="dim-ab"):
        service.delete_dimension(session, dimension_id="dim-ab")


def test_segment_match_needs_the_whole_segment_id(db: str) -> None:
    _dimension("dim-a", "seg-1", "seg-10")
    _schema_with_record("dim-a=seg-10")
    _keep_segments("dim-a", "seg-10")  # seg-1 is a prefix of seg-10, but unused


def test_updating_segments_keeps_rows_in_place(world: None) -> None:
    with session_scope() as session:
        before = {s.id: s for s in service.get_dimension(session, dimension_id="dim-market").segments}
        dimension = service.update_dimension(
            session,
            dimension_id="dim-market",
            data=DimensionUpdate(
                segments=[SegmentIn(id="seg-de", name="Deutschland"), SegmentIn(id="seg-se", name="SE")]
            ),
        )
        after = {s.id: s for s in dimension.segments}
        assert after["seg-de"] is before["seg-de"]
        assert [(s.id, s.sort_order) for s in dimension.segments] == [("seg-de", 0), ("seg-se", 1)]
    with session_scope() as session:
        assert service.segments_by_dimension(session)["dim-market"] == {"seg-de", "seg-se"}


def test_flush_race_becomes_a_conflict(world: None) -> None:
    with session_scope() as session:
        # A row the session does not know about, as if another writer had just committed it.
        session.execute(
            insert(Segment).values(dimension_id="dim-market", id="seg-se", name="SE", sort_order=9)
        )
        session.add(Segment(dimension_id="dim-market", id="seg-se", name="SE", sort_order=9))
        with pytest.raises(Conflict) as caught:
            service._flush(session)
        assert caught.value.code == "conflict"
        session.rollback()


def test_workflow_defaults_and_checks(world: None) -> None:
    with session_scope() as session:
        workflow = service.create_workflow(
            session,
            data=WorkflowCreate(
                id="wf-x", name="X", states=[StateIn(id="state-a", name="A"), StateIn(id="state-b", name="B")]
            ),
        )
        assert [(s.id, s.is_initial) for s in workflow.states] == [("state-a", True), ("state-b", False)]
    with session_scope() as session, pytest.raises(ValidationFailed) as caught:
        service.create_workflow(
            session,
            data=WorkflowCreate(
                name="Y",
                states=[
                    StateIn(id="state-c", name="C", is_initial=True),
                    StateIn(id="state-d", name="D", is_initial=True),
                ],
            ),
        )
    assert caught.value.code == "multiple_initial_states"


def test_guard_validation(world: None) -> None:
    with session_scope() as session:
        service.add_attribute(
            session,
            schema_id="schema-apparel",
            data=AttributeCreate.model_validate(
                {
                    "alias": "hood-note",
                    "name": "Hood note",
                    "dataType": "text",
                    "guard": {"attributeAlias": "hood-type", "value": "packable"},
                }
            ),
        )
    # hood-type is guarded by has-hood; a guard on hood-type's own guard target would close a loop.
    with session_scope() as session, pytest.raises(ValidationFailed) as caught:
        service.update_attribute(
            session,
            schema_id="schema-apparel",
            alias="has-hood",
            data=AttributeUpdate.model_validate({"guard": {"attributeAlias": "hood-note", "value": "x"}}),
        )
    assert caught.value.code == "invalid_guard" and "cycle" in caught.value.message
    with session_scope() as session:
        attribute = service.update_attribute(
            session,
            schema_id="schema-apparel",
            alias="hood-type",
            data=AttributeUpdate.model_validate({"guard": None}),
        )
        assert attribute.guard is None


def test_schema_timestamps(world: None) -> None:
    with session_scope() as session:
        schema = service.create_schema(session, data=SchemaCreate(id="schema-t", name="T"))
        assert schema.created_at == schema.updated_at
        created = schema.created_at
    with session_scope() as session:
        service.add_attribute(
            session,
            schema_id="schema-t",
            data=AttributeCreate(alias="a", name="A", data_type=DataType.BOOLEAN),
        )
    with session_scope() as session:
        schema_row = service.get_schema(session, schema_id="schema-t")
        assert schema_row.updated_at > created


def test_categories_are_listed_depth_first(db: str) -> None:
    with session_scope() as session:
        service.create_catalog(session, data=CatalogCreate(id="catalog-c", name="C"))
        for cat_id, parent, order in [
            ("cat-b", None, 0),
            ("cat-a", None, 0),
            ("cat-b2", "cat-b", 1),
            ("cat-b1", "cat-b", 1),
            ("cat-a1", "cat-a", 0),
            ("cat-b0", "cat-b", 0),
        ]:
            service.create_category(
                session,
                catalog_id="catalog-c",
                data=CategoryCreate(id=cat_id, name=cat_id, parent_id=parent, sort_order=order),
            )
    with session_scope() as session:
        ordered = [c.id for c in service.list_categories(session, catalog_id="catalog-c")]
    assert ordered == ["cat-a", "cat-a1", "cat-b", "cat-b0", "cat-b1", "cat-b2"]


def test_deleting_a_category_forgets_its_subtree(world: None) -> None:
    with session_scope() as session:
        jackets = service.get_category(session, category_id="cat-jackets")
        service.delete_category(session, category_id="cat-outerwear")
        assert jackets not in session
        assert session.get(Category, "cat-jackets") is None
        assert session.get(Category, "cat-knitwear") is not None


def test_moving_a_category_to_its_own_child_is_refused(world: None) -> None:
    with session_scope() as session, pytest.raises(ValidationFailed) as caught:
        service.update_category(
            session, category_id="cat-apparel", data=CategoryUpdate(parent_id="cat-jackets")
        )
    assert caught.value.code == "category_cycle"


def test_renaming_a_workflow_keeps_rows_written_by_other_means(db: str) -> None:
    # Given a workflow whose ids predate the id rules
    with session_scope() as session:
        session.add(
            Workflow(
                id="wf-legacy",
                name="Legacy",
                states=[
                    LifecycleState(
                        id="draft", name="Draft", is_initial=True, required_attributes=["Old Alias"]
                    )
                ],
            )
        )
    # When only its name changes, then its states stay as they are
    with session_scope() as session:
        workflow = service.update_workflow(
            session, workflow_id="wf-legacy", data=WorkflowUpdate(name="Renamed")
        )
        assert workflow.name == "Renamed"
        assert [(s.id, s.required_attributes) for s in workflow.states] == [("draft", ["Old Alias"])]


def test_unreachable_categories_are_still_listed(world: None) -> None:
    with session_scope() as session:
        service.create_catalog(session, data=CatalogCreate(id="catalog-other", name="Other"))
        # Written around the service: a parent in another catalog.
        session.add(
            Category(id="cat-stray", catalog_id="catalog-other", parent_id="cat-apparel", name="Stray")
        )
    with session_scope() as session:
        assert [c.id for c in service.list_categories(session, catalog_id="catalog-other")] == ["cat-stray"]
