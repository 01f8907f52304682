"""Seller accounts and what a seller owns.

Every read and write a seller makes goes through :func:`owned_product`, which answers 404 for
a product of another seller or of the platform, so a seller can neither change nor learn about
what is not theirs (the same rule as other users' orders, ``tests/security``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from serving.core.clock import utcnow
from serving.core.errors import Conflict, Forbidden, NotFound
from serving.db.tables import Category, Product, User
from serving.db.tables.marketplace import Seller, SellerLedgerEntry, SellerProduct, SellerShipment
from serving.services.shop import catalog, inventory

SELLER_ROLE = "seller"


def seller_dict(seller: Seller) -> dict[str, Any]:
    return {
        "id": seller.id,
        "user_id": seller.user_id,
        "display_name": seller.display_name,
        "commission_bps": seller.commission_bps,
        "status": seller.status,
        "created_at": seller.created_at,
    }


def register(
    session: Session, *, user_id: int, display_name: str, commission_bps: int
) -> dict[str, Any]:
    """Make a customer a seller (role ``seller``) with a commission rate. Commits.

    Only a customer can become one: an admin keeps their role (roles are one per user), and a
    user who already sells is a 409."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("User", user_id)
    if user.role != "customer":
        raise Conflict(f"User {user_id} has the role {user.role!r}; only a customer can sell")
    now = utcnow()
    seller = Seller(
        user_id=user_id,
        display_name=display_name,
        commission_bps=commission_bps,
        status="active",
        created_at=now,
        updated_at=now,
    )
    session.add(seller)
    session.execute(update(User).where(User.id == user_id).values(role=SELLER_ROLE, updated_at=now))
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(f"User {user_id} is a seller already") from exc
    out = seller_dict(seller)
    session.commit()
    return out


def list_sellers(session: Session) -> list[dict[str, Any]]:
    """Every seller with what the admin view shows: products, open parcels and the ledger's
    sales, commission and balance owed (three grouped reads, whatever the number of sellers)."""
    products = dict(
        session.execute(
            select(SellerProduct.seller_id, func.count()).group_by(SellerProduct.seller_id)
        ).all()
    )
    parcels = dict(
        session.execute(
            select(SellerShipment.seller_id, func.count())
            .where(SellerShipment.status == "label_created")
            .group_by(SellerShipment.seller_id)
        ).all()
    )
    sums: dict[int, dict[str, int]] = {}
    for seller_id, kind, total in session.execute(
        select(
            SellerLedgerEntry.seller_id,
            SellerLedgerEntry.kind,
            func.sum(SellerLedgerEntry.amount_minor),
        ).group_by(SellerLedgerEntry.seller_id, SellerLedgerEntry.kind)
    ):
        sums.setdefault(seller_id, {})[kind] = int(total)
    out = []
    for seller in session.scalars(select(Seller).order_by(Seller.id)):
        kinds = sums.get(seller.id, {})
        out.append(
            {
                **seller_dict(seller),
                "products": products.get(seller.id, 0),
                "parcels_to_ship": parcels.get(seller.id, 0),
                "sales_minor": kinds.get("sale", 0),
                "commission_minor": -kinds.get("commission", 0),
                "owed_minor": sum(kinds.values()),
            }
        )
    return out


def seller_of_user(session: Session, user_id: int) -> Seller:
    """The caller's active seller account, or 403 (the role alone is not enough)."""
    seller = session.scalar(select(Seller).where(Seller.user_id == user_id))
    if seller is None or seller.status != "active":
        raise Forbidden("This action needs an active seller account")
    return seller


def get_seller(session: Session, seller_id: int) -> Seller:
    seller = session.get(Seller, seller_id)
    if seller is None:
        raise NotFound("Seller", seller_id)
    return seller


def owned_product(session: Session, *, seller_id: int, product_id: int) -> None:
    """404 unless the product is this seller's (another's looks like no product at all)."""
    owner = session.scalar(
        select(SellerProduct.seller_id).where(SellerProduct.product_id == product_id)
    )
    if owner != seller_id:
        raise NotFound("Product", product_id)


def create_product(session: Session, *, seller: Seller, data: dict[str, Any]) -> dict[str, Any]:
    """A new product owned by ``seller``, with its opening stock; product and ownership are
    one transaction, so there is never a product without its owner. Commits."""
    if session.get(Category, data["category_id"]) is None:
        raise NotFound("Category", data["category_id"])
    try:
        # The catalog's own insert (product, attributes, stock row), inside this transaction.
        product_id = catalog._insert_product(session, data=data, actor_user_id=seller.user_id)
        session.add(SellerProduct(product_id=product_id, seller_id=seller.id, created_at=utcnow()))
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(f"A product with sku {data['sku']!r} already exists") from exc
    return catalog.get_product(session, product_id)


def assign_products(session: Session, *, seller_id: int, product_ids: list[int]) -> dict[str, int]:
    """An admin hands existing platform products to a seller (a shop onboarding a merchant's
    listings, or the demo shop's third-party brands). Commits.

    All or nothing: an unknown product is a 404 and one another seller owns a 409, and then
    nothing is assigned; one this seller owns already counts as ``kept``."""
    get_seller(session, seller_id)
    wanted = sorted(set(product_ids))
    found = set(session.scalars(select(Product.id).where(Product.id.in_(wanted))))
    missing = [p for p in wanted if p not in found]
    if missing:
        raise NotFound("Product", missing[0])
    owners = dict(
        session.execute(
            select(SellerProduct.product_id, SellerProduct.seller_id).where(
                SellerProduct.product_id.in_(wanted)
            )
        ).all()
    )
    taken = sorted(p for p, owner in owners.items() if owner != seller_id)
    if taken:
        raise Conflict(
            f"Product {taken[0]} belongs to another seller",
            type_="https://storeloop.dev/problems/product-owned-by-another-seller",
            product_ids=taken,
        )
    now = utcnow()
    new = [p for p in wanted if p not in owners]
    session.add_all(SellerProduct(product_id=p, seller_id=seller_id, created_at=now) for p in new)
    try:
        session.commit()
    except IntegrityError as exc:  # another admin assigned one of them at the same moment
        session.rollback()
        raise Conflict("A product was assigned to a seller meanwhile; please retry") from exc
    return {"seller_id": seller_id, "assigned": len(new), "kept": len(wanted) - len(new)}


def product_ids(session: Session, seller_id: int) -> list[int]:
    return list(
        session.scalars(
            select(SellerProduct.product_id)
            .where(SellerProduct.seller_id == seller_id)
            .order_by(SellerProduct.product_id)
        )
    )


def list_products(session: Session, seller_id: int) -> list[dict[str, Any]]:
    """The seller's products with their stock (any status: a seller sees archived ones too)."""
    ids = product_ids(session, seller_id)
    products = catalog.get_products(session, ids)
    out = []
    for pid in ids:
        if pid in products:
            out.append({**products[pid], "stock": inventory.stock_of(session, pid)})
    return out


def update_product(
    session: Session, *, seller: Seller, product_id: int, changes: dict[str, Any]
) -> dict[str, Any]:
    owned_product(session, seller_id=seller.id, product_id=product_id)
    return catalog.update_product(session, product_id=product_id, changes=changes)


def adjust_stock(
    session: Session, *, seller: Seller, product_id: int, delta: int, reason: str, note: str
) -> dict[str, int]:
    """The same stock ledger as the shop's own products (a movement per change)."""
    owned_product(session, seller_id=seller.id, product_id=product_id)
    return inventory.adjust_on_hand(
        session,
        product_id=product_id,
        delta=delta,
        reason=reason,
        actor_user_id=seller.user_id,
        note=note,
    )
