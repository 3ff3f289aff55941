"""Catalogue model endpoints: dimensions, workflows, schemas, catalogs (admin writes)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from skuport.api import SessionDep, api_router
from skuport.auth.deps import CurrentUser, Principal, require_roles
from skuport.auth.roles import CATALOG_WRITE
from skuport.catalog import service
from skuport.catalog.schemas import (
    AttributeCreate,
    AttributeRead,
    AttributeUpdate,
    CatalogCreate,
    CatalogRead,
    CatalogUpdate,
    CategoryCreate,
    CategoryNode,
    CategoryRead,
    CategoryUpdate,
    DimensionCreate,
    DimensionRead,
    DimensionUpdate,
    SchemaCreate,
    SchemaRead,
    SchemaUpdate,
    WorkflowCreate,
    WorkflowRead,
    WorkflowUpdate,
    category_tree,
)

router = api_router(tags=["catalogue"])
Admin = Annotated[Principal, Depends(require_roles(*CATALOG_WRITE))]


# Dimensions


@router.get("/dimensions", response_model=list[DimensionRead])
def list_dimensions(session: SessionDep, _user: CurrentUser) -> list[DimensionRead]:
    """List the dimensions and their segments."""
    return [DimensionRead.model_validate(d) for d in service.list_dimensions(session)]


@router.post("/dimensions", response_model=DimensionRead, status_code=201)
def create_dimension(data: DimensionCreate, session: SessionDep, _user: Admin) -> DimensionRead:
    """Create a dimension with its segments (admin)."""
    return DimensionRead.model_validate(service.create_dimension(session, data=data))


@router.get("/dimensions/{dimension_id}", response_model=DimensionRead)
def get_dimension(dimension_id: str, session: SessionDep, _user: CurrentUser) -> DimensionRead:
    """Get a dimension."""
    return DimensionRead.model_validate(service.get_dimension(session, dimension_id=dimension_id))


@router.put("/dimensions/{dimension_id}", response_model=DimensionRead)
def update_dimension(
    dimension_id: str, data: DimensionUpdate, session: SessionDep, _user: Admin
) -> DimensionRead:
    """Change a dimension; a given segment list replaces the old one (admin)."""
    dimension = service.update_dimension(session, dimension_id=dimension_id, data=data)
    return DimensionRead.model_validate(dimension)


@router.delete("/dimensions/{dimension_id}", status_code=204)
def delete_dimension(dimension_id: str, session: SessionDep, _user: Admin) -> None:
    """Delete a dimension no attribute or value uses (admin)."""
    service.delete_dimension(session, dimension_id=dimension_id)


# Workflows


@router.get("/workflows", response_model=list[WorkflowRead])
def list_workflows(session: SessionDep, _user: CurrentUser) -> list[WorkflowRead]:
    """List the workflows with their states and transitions."""
    return [WorkflowRead.model_validate(w) for w in service.list_workflows(session)]


@router.post("/workflows", response_model=WorkflowRead, status_code=201)
def create_workflow(data: WorkflowCreate, session: SessionDep, _user: Admin) -> WorkflowRead:
    """Create a workflow (admin)."""
    return WorkflowRead.model_validate(service.create_workflow(session, data=data))


@router.get("/workflows/{workflow_id}", response_model=WorkflowRead)
def get_workflow(workflow_id: str, session: SessionDep, _user: CurrentUser) -> WorkflowRead:
    """Get a workflow."""
    return WorkflowRead.model_validate(service.get_workflow(session, workflow_id=workflow_id))


@router.put("/workflows/{workflow_id}", response_model=WorkflowRead)
def update_workflow(
    workflow_id: str, data: WorkflowUpdate, session: SessionDep, _user: Admin
) -> WorkflowRead:
    """Change a workflow; given state or transition lists replace the old ones (admin)."""
    return WorkflowRead.model_validate(service.update_workflow(session, workflow_id=workflow_id, data=data))


@router.delete("/workflows/{workflow_id}", status_code=204)
def delete_workflow(workflow_id: str, session: SessionDep, _user: Admin) -> None:
    """Delete a workflow no schema uses (admin)."""
    service.delete_workflow(session, workflow_id=workflow_id)


# Schemas and attributes


@router.get("/schemas", response_model=list[SchemaRead])
def list_schemas(session: SessionDep, _user: CurrentUser) -> list[SchemaRead]:
    """List the schemas with their attributes."""
    return [SchemaRead.model_validate(s) for s in service.list_schemas(session)]


@router.post("/schemas", response_model=SchemaRead, status_code=201)
def create_schema(data: SchemaCreate, session: SessionDep, _user: Admin) -> SchemaRead:
    """Create a schema with its attributes (admin)."""
    return SchemaRead.model_validate(service.create_schema(session, data=data))


@router.get("/schemas/{schema_id}", response_model=SchemaRead)
def get_schema(schema_id: str, session: SessionDep, _user: CurrentUser) -> SchemaRead:
    """Get a schema with its attributes."""
    return SchemaRead.model_validate(service.get_schema(session, schema_id=schema_id))


@router.put("/schemas/{schema_id}", response_model=SchemaRead)
def update_schema(schema_id: str, data: SchemaUpdate, session: SessionDep, _user: Admin) -> SchemaRead:
    """Change a schema; a given attribute list replaces the old one, matched by alias (admin)."""
    return SchemaRead.model_validate(service.update_schema(session, schema_id=schema_id, data=data))


@router.delete("/schemas/{schema_id}", status_code=204)
def delete_schema(schema_id: str, session: SessionDep, _user: Admin) -> None:
    """Delete a schema that has no records (admin)."""
    service.delete_schema(session, schema_id=schema_id)


@router.post("/schemas/{schema_id}/attributes", response_model=AttributeRead, status_code=201)
def add_attribute(schema_id: str, data: AttributeCreate, session: SessionDep, _user: Admin) -> AttributeRead:
    """Add an attribute to a schema (admin)."""
    return AttributeRead.model_validate(service.add_attribute(session, schema_id=schema_id, data=data))


@router.get("/schemas/{schema_id}/attributes/{alias}", response_model=AttributeRead)
def get_attribute(schema_id: str, alias: str, session: SessionDep, _user: CurrentUser) -> AttributeRead:
    """Get one attribute of a schema."""
    return AttributeRead.model_validate(service.get_attribute(session, schema_id=schema_id, alias=alias))


@router.put("/schemas/{schema_id}/attributes/{alias}", response_model=AttributeRead)
def update_attribute(
    schema_id: str, alias: str, data: AttributeUpdate, session: SessionDep, _user: Admin
) -> AttributeRead:
    """Change the given fields of an attribute (admin)."""
    return AttributeRead.model_validate(
        service.update_attribute(session, schema_id=schema_id, alias=alias, data=data)
    )


@router.delete("/schemas/{schema_id}/attributes/{alias}", status_code=204)
def delete_attribute(schema_id: str, alias: str, session: SessionDep, _user: Admin) -> None:
    """Remove an attribute that no record holds values for (admin)."""
    service.delete_attribute(session, schema_id=schema_id, alias=alias)


# Catalogs and categories


@router.get("/catalogs", response_model=list[CatalogRead])
def list_catalogs(session: SessionDep, _user: CurrentUser) -> list[CatalogRead]:
    """List the catalogs."""
    return [CatalogRead.model_validate(c) for c in service.list_catalogs(session)]


@router.post("/catalogs", response_model=CatalogRead, status_code=201)
def create_catalog(data: CatalogCreate, session: SessionDep, _user: Admin) -> CatalogRead:
    """Create a catalog (admin)."""
    return CatalogRead.model_validate(service.create_catalog(session, data=data))


@router.get("/catalogs/{catalog_id}", response_model=CatalogRead)
def get_catalog(catalog_id: str, session: SessionDep, _user: CurrentUser) -> CatalogRead:
    """Get a catalog."""
    return CatalogRead.model_validate(service.get_catalog(session, catalog_id=catalog_id))


@router.put("/catalogs/{catalog_id}", response_model=CatalogRead)
def update_catalog(catalog_id: str, data: CatalogUpdate, session: SessionDep, _user: Admin) -> CatalogRead:
    """Change a catalog's name or description (admin)."""
    return CatalogRead.model_validate(service.update_catalog(session, catalog_id=catalog_id, data=data))


@router.delete("/catalogs/{catalog_id}", status_code=204)
def delete_catalog(catalog_id: str, session: SessionDep, _user: Admin) -> None:
    """Delete a catalog, its categories and their record assignments (admin)."""
    service.delete_catalog(session, catalog_id=catalog_id)


@router.get("/catalogs/{catalog_id}/categories", response_model=list[CategoryNode] | list[CategoryRead])
def list_categories(
    catalog_id: str,
    session: SessionDep,
    _user: CurrentUser,
    tree: Annotated[bool, Query(description="Nest children under their parents.")] = False,
) -> list[CategoryNode] | list[CategoryRead]:
    """A catalog's categories: a flat list (parents first, with parentId), or nested with ?tree=true."""
    categories = service.list_categories(session, catalog_id=catalog_id)
    if tree:
        return category_tree(categories)
    return [CategoryRead.model_validate(c) for c in categories]


@router.post("/catalogs/{catalog_id}/categories", response_model=CategoryRead, status_code=201)
def create_category(catalog_id: str, data: CategoryCreate, session: SessionDep, _user: Admin) -> CategoryRead:
    """Add a category to a catalog (admin)."""
    return CategoryRead.model_validate(service.create_category(session, catalog_id=catalog_id, data=data))


@router.get("/categories/{category_id}", response_model=CategoryRead)
def get_category(category_id: str, session: SessionDep, _user: CurrentUser) -> CategoryRead:
    """Get a category."""
    return CategoryRead.model_validate(service.get_category(session, category_id=category_id))


@router.put("/categories/{category_id}", response_model=CategoryRead)
def update_category(
    category_id: str, data: CategoryUpdate, session: SessionDep, _user: Admin
) -> CategoryRead:
    """Rename, reorder or move a category within its catalog (admin)."""
    return CategoryRead.model_validate(service.update_category(session, category_id=category_id, data=data))


@router.delete("/categories/{category_id}", status_code=204)
def delete_category(category_id: str, session: SessionDep, _user: Admin) -> None:
    """Delete a category with its subtree and their record assignments (admin)."""
    service.delete_category(session, category_id=category_id)
