"""The demo shop's third-party sellers: some brands are sold by their own brand stores.

Loading creates the catalog first, exactly as before (the bulk import in catalog order, so the
product ids do not change), then registers a few seller accounts and has the admin hand each
one the products of its brands (``POST /api/v1/admin/sellers/{id}/products``). Shoppers do
not choose by seller, so their searches, clicks and purchases are what they were; what changes
is what the shop records around them: a cart with products of two stores becomes one payment
and a parcel per seller, with the sellers' sale, commission and payout ledger
(``docs/marketplace.md``), so the demo data has marketplace orders.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from simulation.catalog import Catalog
from simulation.client import Api, route_missing

#: Brand stores in the demo shop, and their commission rates (basis points of each sale).
STORES = (("Northwind Outlet", 1200), ("Harbour & Co", 800), ("Kestrel Direct", 1500))
#: Brands whose index falls in these tenths (3 of 10) are sold by a store, the rest by the shop.
SOLD_BY_STORES = 3


def store_of_brand(brand: int) -> int | None:
    """The store (index into :data:`STORES`) that sells a brand, or None: the shop's own."""
    if brand % 10 >= SOLD_BY_STORES:
        return None
    return brand % len(STORES)


def credentials(store: int, seed: int, run_tag: str) -> tuple[str, str]:
    """A store's sign-in, derived from the seed like the shoppers' (a re-run signs in)."""
    tag = f".{run_tag}" if run_tag else ""
    digest = hashlib.sha256(f"{seed}:store{store}:pw".encode()).hexdigest()[:16]
    return f"store{store}.s{seed}{tag}@sellers.example.com", f"pw-{digest}"


async def _seller_id(
    api: Api, admin: str, at: datetime, store: int, seed: int, run_tag: str
) -> int | None:
    """The store's seller id: its account registered (or signed in) and made a seller; None
    from a shop without sellers (its router answers 404)."""
    name, rate = STORES[store]
    email, password = credentials(store, seed, run_tag)
    r = await api.call(
        "POST",
        "/api/v1/auth/register",
        at=at,
        json={"email": email, "password": password, "full_name": name},
    )
    if r.status_code not in (201, 409):
        raise RuntimeError(f"registering store {store} failed: {r.status_code} {r.text[:200]}")
    r = await api.call(
        "POST", "/api/v1/auth/token", at=at, data={"username": email, "password": password}
    )
    if r.status_code != 200:
        raise RuntimeError(f"store {store} cannot sign in: {r.status_code} {r.text[:200]}")
    token = r.json()["access_token"]
    r = await api.call("GET", "/api/v1/seller", at=at, token=token)
    if r.status_code in (404, 405) and route_missing(r):
        return None
    if r.status_code == 200:
        return int(r.json()["id"])  # a re-run of the demo: a seller already
    me = await api.call("GET", "/api/v1/me", at=at, token=token)
    if me.status_code != 200:
        raise RuntimeError(
            f"store {store} cannot read its account: {me.status_code} {me.text[:200]}"
        )
    user_id = int(me.json()["id"])
    r = await api.call(
        "POST",
        "/api/v1/admin/sellers",
        at=at,
        token=admin,
        json={"user_id": user_id, "display_name": name, "commission_bps": rate},
    )
    if r.status_code != 201:
        raise RuntimeError(f"making store {store} a seller failed: {r.status_code} {r.text[:200]}")
    return int(r.json()["id"])


async def ensure_sellers(
    api: Api,
    admin: str,
    at: datetime,
    catalog: Catalog,
    product_ids: dict[str, int],
    *,
    seed: int,
    run_tag: str = "",
) -> tuple[dict[int, int], dict[int, tuple[str, str]]]:
    """Every store a seller of its brands' products; returns server product id -> seller id,
    and each seller's sign-in (the stores ship their own parcels)."""
    by_store: dict[int, list[int]] = {}
    for index, sku in enumerate(catalog.skus):
        store = store_of_brand(int(catalog.brand[index]))
        if store is not None:
            by_store.setdefault(store, []).append(int(product_ids[sku]))
    owners: dict[int, int] = {}
    logins: dict[int, tuple[str, str]] = {}
    for store, pids in sorted(by_store.items()):
        seller = await _seller_id(api, admin, at, store, seed, run_tag)
        if seller is None:
            return {}, {}
        logins[seller] = credentials(store, seed, run_tag)
        for start in range(0, len(pids), 1000):
            chunk = pids[start : start + 1000]
            r = await api.call(
                "POST",
                f"/api/v1/admin/sellers/{seller}/products",
                at=at,
                token=admin,
                json={"product_ids": chunk},
            )
            if r.status_code != 200:
                raise RuntimeError(
                    f"assigning store {store}'s products: {r.status_code} {r.text[:200]}"
                )
        owners.update(dict.fromkeys(pids, seller))
    return owners, logins


async def ship_store_parcels(
    api: Api, logins: dict[int, tuple[str, str]], at: datetime, due: dict[int, list[str]]
) -> int:
    """Each store signs in and hands its parcels of ``due`` (seller id -> order ids) to the
    carrier (``POST /api/v1/seller/orders/{id}/ship``); returns the parcels shipped. A 409 (the
    order was cancelled, or the parcel shipped already) is left alone."""
    shipped = 0
    for seller, order_ids in sorted(due.items()):
        if seller not in logins or not order_ids:
            continue
        email, password = logins[seller]
        r = await api.call(
            "POST", "/api/v1/auth/token", at=at, data={"username": email, "password": password}
        )
        if r.status_code != 200:
            continue
        token = r.json()["access_token"]
        for order_id in order_ids:
            r = await api.call("POST", f"/api/v1/seller/orders/{order_id}/ship", at=at, token=token)
            shipped += r.status_code == 200
    return shipped
