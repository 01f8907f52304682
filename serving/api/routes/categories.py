"""The category tree: read by anyone, written by admins."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from starlette.responses import Response

from serving.api.deps import AdminUser, SessionDep
from serving.api.responses import json_with_etag
from serving.api.schemas.catalog import (
    CategoriesPublic,
    CategoryCreate,
    CategoryPublic,
    CategoryUpdate,
)
from serving.api.schemas.common import PathId
from serving.services.shop import catalog

router = APIRouter(prefix="/api/v1/categories", tags=["catalog"])


@router.get("", response_model=CategoriesPublic, responses={304: {"description": "Not modified"}})
def list_categories(request: Request, session: SessionDep) -> Response:
    """Every category with its path (``a/b/c``) and depth, ordered by path."""
    data = catalog.list_categories(session)
    return json_with_etag(request, {"data": data, "count": len(data)})


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=CategoryPublic,
    responses={401: {}, 403: {}, 404: {}, 409: {}},
)
def create_category(body: CategoryCreate, session: SessionDep, admin: AdminUser) -> dict:
    return catalog.create_category(
        session, slug=body.slug, name=body.name, parent_id=body.parent_id
    )


@router.patch(
    "/{category_id}", response_model=CategoryPublic, responses={401: {}, 403: {}, 404: {}}
)
def update_category(
    category_id: PathId, body: CategoryUpdate, session: SessionDep, admin: AdminUser
) -> dict:
    return catalog.update_category(session, category_id=category_id, name=body.name)
