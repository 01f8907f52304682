"""Marketplace routes: admins make sellers and pay them; a seller manages only their own
products, stock, order lines and parcels (another seller's look like nothing at all: 404)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, status

from serving.api.deps import AdminUser, CurrentUser, EventsDep, SessionDep
from serving.api.schemas.aftersales import SellerCreate, SellerProducts
from serving.api.schemas.catalog import ProductCreate, ProductUpdate, StockAdjustment
from serving.api.schemas.common import PathId
from serving.components import components_of
from serving.core.errors import Forbidden
from serving.db.tables.marketplace import Seller
from serving.services.marketplace import fulfilment, ledger, sellers

router = APIRouter(tags=["marketplace"])
OrderId = Annotated[str, Path(min_length=1, max_length=40)]


def get_seller(session: SessionDep, user: CurrentUser) -> Seller:
    """The caller's seller account, checked in the database on every request."""
    return sellers.seller_of_user(session, user.id)


SellerDep = Annotated[Seller, Depends(get_seller)]


@router.post(
    "/api/v1/admin/sellers",
    status_code=status.HTTP_201_CREATED,
    responses={401: {}, 403: {}, 404: {}, 409: {}},
)
def create_seller(
    body: SellerCreate, session: SessionDep, admin: AdminUser, events: EventsDep
) -> dict:
    """Make a customer a seller with a commission rate (basis points of each sale)."""
    seller = sellers.register(
        session,
        user_id=body.user_id,
        display_name=body.display_name,
        commission_bps=body.commission_bps,
    )
    events.emit(
        "seller_registered",
        user_id=body.user_id,
        props={"seller_id": seller["id"], "commission_bps": body.commission_bps},
    )
    return seller


@router.get("/api/v1/admin/sellers", responses={401: {}, 403: {}})
def all_sellers(session: SessionDep, admin: AdminUser) -> dict:
    """Every seller with products, parcels to ship, sales, commission and balance owed."""
    data = sellers.list_sellers(session)
    return {"data": data, "count": len(data)}


@router.post(
    "/api/v1/admin/sellers/{seller_id}/products", responses={401: {}, 403: {}, 404: {}, 409: {}}
)
def assign_products(
    seller_id: PathId, body: SellerProducts, session: SessionDep, admin: AdminUser
) -> dict:
    """Hand existing platform products to a seller (all or nothing; 409 if another owns one)."""
    return sellers.assign_products(session, seller_id=seller_id, product_ids=body.product_ids)


@router.get("/api/v1/admin/sellers/{seller_id}/ledger", responses={401: {}, 403: {}, 404: {}})
def admin_ledger(seller_id: PathId, session: SessionDep, admin: AdminUser) -> dict:
    sellers.get_seller(session, seller_id)
    return {**ledger.balance(session, seller_id), "entries": ledger.entries(session, seller_id)}


@router.post(
    "/api/v1/admin/sellers/{seller_id}/payouts", responses={401: {}, 403: {}, 404: {}, 409: {}}
)
def pay_out(seller_id: PathId, session: SessionDep, admin: AdminUser, events: EventsDep) -> dict:
    """Pay the seller everything owed now (one ``payout`` entry); 409 when nothing is owed."""
    seller = sellers.get_seller(session, seller_id)
    user_id = seller.user_id
    paid = ledger.pay_out(session, seller_id)
    events.emit("seller_payout", user_id=user_id, props=paid)
    return paid


@router.post("/api/v1/admin/marketplace/settle", responses={401: {}, 403: {}})
def settle(session: SessionDep, admin: AdminUser) -> dict:
    """Run the sellers' pass now (parcels, sale/commission/refund entries); also runs alone."""
    return fulfilment.settle_orders(session)


@router.get("/api/v1/seller", responses={401: {}, 403: {}})
def me(seller: SellerDep) -> dict:
    return sellers.seller_dict(seller)


@router.get("/api/v1/seller/products", responses={401: {}, 403: {}})
def my_products(session: SessionDep, seller: SellerDep) -> dict:
    data = sellers.list_products(session, seller.id)
    return {"data": data, "count": len(data)}


@router.post(
    "/api/v1/seller/products",
    status_code=status.HTTP_201_CREATED,
    responses={401: {}, 403: {}, 404: {}, 409: {}},
)
def create_product(
    request: Request, body: ProductCreate, session: SessionDep, seller: SellerDep, events: EventsDep
) -> dict:
    data = body.model_dump()
    if data.pop("created_at", None) is not None:
        raise Forbidden("created_at can only be set by admins importing a catalog")
    product = sellers.create_product(session, seller=seller, data=data)
    components_of(request).read_cache.invalidate_prefix("listing")
    events.emit(
        "product_created",
        product_id=product["id"],
        user_id=seller.user_id,
        props={"seller_id": seller.id},
    )
    return product


@router.patch("/api/v1/seller/products/{product_id}", responses={401: {}, 403: {}, 404: {}})
def update_product(
    request: Request,
    product_id: PathId,
    body: ProductUpdate,
    session: SessionDep,
    seller: SellerDep,
    events: EventsDep,
) -> dict:
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    product = sellers.update_product(session, seller=seller, product_id=product_id, changes=changes)
    components_of(request).read_cache.invalidate_product(product_id)
    events.emit(
        "product_updated",
        product_id=product_id,
        user_id=seller.user_id,
        props={"fields": sorted(changes), "seller_id": seller.id},
    )
    return product


@router.post(
    "/api/v1/seller/products/{product_id}/stock", responses={401: {}, 403: {}, 404: {}, 409: {}}
)
def adjust_stock(
    request: Request,
    product_id: PathId,
    body: StockAdjustment,
    session: SessionDep,
    seller: SellerDep,
    events: EventsDep,
) -> dict:
    stock = sellers.adjust_stock(
        session,
        seller=seller,
        product_id=product_id,
        delta=body.delta,
        reason=body.reason,
        note=body.note,
    )
    components_of(request).read_cache.invalidate_product(product_id)
    events.emit(
        "stock_changed",
        product_id=product_id,
        user_id=seller.user_id,
        props={"delta": body.delta, "reason": body.reason, "seller_id": seller.id, **stock},
    )
    return stock


@router.get("/api/v1/seller/orders", responses={401: {}, 403: {}})
def my_orders(session: SessionDep, seller: SellerDep) -> dict:
    data = fulfilment.seller_orders(session, seller_id=seller.id)
    return {"data": data, "count": len(data)}


@router.get("/api/v1/seller/orders/{order_id}", responses={401: {}, 403: {}, 404: {}})
def my_order(order_id: OrderId, session: SessionDep, seller: SellerDep) -> dict:
    return fulfilment.seller_order(session, seller_id=seller.id, order_id=order_id)


@router.post(
    "/api/v1/seller/orders/{order_id}/ship", responses={401: {}, 403: {}, 404: {}, 409: {}}
)
def ship(order_id: OrderId, session: SessionDep, seller: SellerDep, events: EventsDep) -> dict:
    """Hand this seller's parcel of the order to the carrier."""
    out = fulfilment.ship_parcel(session, seller_id=seller.id, order_id=order_id)
    events.emit(
        "seller_parcel_shipped",
        user_id=seller.user_id,
        order_id=order_id,
        props={"seller_id": seller.id, "tracking_number": out["parcel"]["tracking_number"]},
    )
    return out


@router.get("/api/v1/seller/ledger", responses={401: {}, 403: {}})
def my_ledger(session: SessionDep, seller: SellerDep) -> dict:
    """What the platform owes this seller, and every entry that explains it."""
    return {**ledger.balance(session, seller.id), "entries": ledger.entries(session, seller.id)}
