"""Products: listing with filters and cursors, single reads with ETags, admin writes."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, status
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from serving.api.deps import AdminUser, EventsDep, SessionDep
from serving.api.responses import cached_json
from serving.api.schemas.catalog import (
    ProductBulkCreate,
    ProductBulkCreated,
    ProductCreate,
    ProductPublic,
    ProductsPublic,
    ProductUpdate,
)
from serving.api.schemas.common import PathId
from serving.components import components_of
from serving.core.errors import Forbidden
from serving.services.shop import catalog

router = APIRouter(prefix="/api/v1/products", tags=["catalog"])

SortName = Literal["id", "newest", "price_asc", "price_desc", "rating"]


async def _read(db, load, arg):
    """Run a cache-miss read: inline on SQLite, in the threadpool otherwise.

    A primary-key read from a local SQLite file takes about 0.1 ms, less than the hop to a
    worker thread and back; a networked database would block the event loop for a round trip.
    """
    if db.is_sqlite:
        return load(db, arg)
    return await run_in_threadpool(load, db, arg)


# Hot reads use a bare connection: a Session costs about four times as much per request here.
def _load_listing(db, query: catalog.ProductQuery) -> dict:
    with db.engine.connect() as conn:
        items, next_cursor = catalog.list_products(conn, query)
    return {"data": items, "count": len(items), "next_cursor": next_cursor}


def _load_product(db, product_id: int) -> dict:
    with db.engine.connect() as conn:
        return catalog.get_product(conn, product_id)


@router.get(
    "",
    response_model=ProductsPublic,
    responses={304: {"description": "Not modified"}, 400: {}, 404: {}},
)
async def list_products(
    request: Request,
    category: Annotated[
        str | None, Query(max_length=120, description="id or slug; includes descendants")
    ] = None,
    brand: Annotated[list[str] | None, Query(max_length=20)] = None,
    price_min: Annotated[int | None, Query(ge=0, le=2_000_000_000)] = None,
    price_max: Annotated[int | None, Query(ge=0, le=2_000_000_000)] = None,
    attr: Annotated[
        list[str] | None, Query(max_length=20, description="attribute filter key:value, repeatable")
    ] = None,
    in_stock: bool | None = None,
    sort: SortName = "id",
    limit: Annotated[int, Query(ge=1, le=100)] = 24,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """Active products, filtered and sorted, one page at a time (follow ``next_cursor``).

    Pages are served from a short-lived in-memory cache (``read_cache_seconds``).
    """
    query = catalog.ProductQuery(
        category=category,
        brands=brand or [],
        price_min=price_min,
        price_max=price_max,
        attributes=attr or [],
        in_stock=in_stock,
        sort=sort,
        limit=limit,
        cursor=cursor,
    )
    cache = components_of(request).read_cache
    key = ("listing", request.url.query)
    entry = cache.get(key)
    if entry is None:
        payload = await _read(components_of(request).db, _load_listing, query)
        entry = cache.put(key, payload)
    return cached_json(request, entry)


@router.get(
    "/{product_id}",
    response_model=ProductPublic,
    responses={304: {"description": "Not modified"}, 404: {}},
)
async def get_product(request: Request, product_id: PathId) -> Response:
    """One product with its current price and stock (at most ``read_cache_seconds`` old)."""
    cache = components_of(request).read_cache
    key = ("product", product_id)
    entry = cache.get(key)
    if entry is None:
        payload = await _read(components_of(request).db, _load_product, product_id)
        entry = cache.put(key, payload)
    return cached_json(request, entry)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ProductPublic,
    responses={401: {}, 403: {}, 404: {}, 409: {}},
)
def create_product(
    request: Request, body: ProductCreate, session: SessionDep, admin: AdminUser, events: EventsDep
) -> dict:
    data = body.model_dump()
    if data.get("created_at") is not None and not components_of(request).settings.simulation_mode:
        # Back-dating is for imports of historic catalogs in simulation mode only.
        raise Forbidden("created_at can only be set in simulation mode")
    product = catalog.create_product(session, data=data, actor_user_id=admin.id)
    components_of(request).read_cache.invalidate_prefix("listing")
    events.emit("product_created", product_id=product["id"], user_id=admin.id)
    return product


@router.post(
    "/bulk",
    status_code=status.HTTP_201_CREATED,
    response_model=ProductBulkCreated,
    responses={401: {}, 403: {}, 404: {}, 409: {}},
)
def create_products_bulk(
    request: Request,
    body: ProductBulkCreate,
    session: SessionDep,
    admin: AdminUser,
    events: EventsDep,
) -> dict:
    """Import up to 500 products in one transaction (all or nothing), e.g. a catalog feed."""
    items = [item.model_dump() for item in body.products]
    backdated = any(item.get("created_at") is not None for item in items)
    if backdated and not components_of(request).settings.simulation_mode:
        raise Forbidden("created_at can only be set in simulation mode")
    ids = catalog.create_products(session, items=items, actor_user_id=admin.id)
    components_of(request).read_cache.invalidate_prefix("listing")
    events.emit_many([("product_created", {"product_id": pid, "user_id": admin.id}) for pid in ids])
    return {"created": len(ids), "ids": ids}


@router.patch("/{product_id}", response_model=ProductPublic, responses={401: {}, 403: {}, 404: {}})
def update_product(
    request: Request,
    product_id: PathId,
    body: ProductUpdate,
    session: SessionDep,
    admin: AdminUser,
    events: EventsDep,
) -> dict:
    changes = body.model_dump(exclude_unset=True)
    changes = {k: v for k, v in changes.items() if v is not None}
    product = catalog.update_product(session, product_id=product_id, changes=changes)
    components_of(request).read_cache.invalidate_product(product_id)
    events.emit(
        "product_updated",
        product_id=product_id,
        user_id=admin.id,
        props={"fields": sorted(changes)},
    )
    return product


@router.post(
    "/{product_id}/archive", response_model=ProductPublic, responses={401: {}, 403: {}, 404: {}}
)
def archive_product(
    request: Request, product_id: PathId, session: SessionDep, admin: AdminUser, events: EventsDep
) -> dict:
    """Take a product off sale; it disappears from listings, search and recommendations."""
    product = catalog.set_status(session, product_id=product_id, status="archived")
    components_of(request).read_cache.invalidate_product(product_id)
    events.emit(
        "product_updated", product_id=product_id, user_id=admin.id, props={"status": "archived"}
    )
    return product
