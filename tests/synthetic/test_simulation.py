"""The simulator against the real app: reproducible, HTTP-only, and commerce-shaped.

The plausibility test runs a real uvicorn server in a subprocess and gives the simulator nothing
but its URL and an admin login, so any private shortcut would fail. Figures are printed (run
with ``-s``) and recorded in docs/synthetic.md.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
from collections import Counter
from dataclasses import replace
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from devtools.server import ServerProcess, server_env
from features.events import read_closed_segments
from serving.core.config import Settings
from serving.db.engine import Database
from serving.inprocess import LocalShop
from serving.services.shop.accounts import create_admin
from simulation import habits
from simulation.client import Api
from simulation.context import SimConfig
from simulation.runner import build_world, shard_owners, simulate
from simulation.workers import run_inprocess
from tests.conftest import truncate_all

pytestmark = pytest.mark.slow  # whole simulated shops: half a minute or more each

#: Every route shape the simulator may call: the public API plus the admin catalog routes.
PUBLIC_ROUTES = {
    "POST /api/v1/auth/register", "POST /api/v1/auth/token", "GET /api/v1/me",
    "GET /api/v1/categories", "POST /api/v1/categories", "GET /api/v1/products",
    "POST /api/v1/products", "POST /api/v1/products/bulk", "GET /api/v1/products{id}",
    "POST /api/v1/products{id}/reviews",
    "POST /api/v1/inventory{id}/adjustments", "POST /api/v1/events", "GET /api/v1/search",
    "GET /api/v1/recommendations/popular", "GET /api/v1/recommendations/users{id}",
    "POST /api/v1/cart/items", "POST /api/v1/payments/methods", "POST /api/v1/orders",
    "POST /api/v1/orders{id}/cancel", "GET /api/v1/admin/promotions",
    "POST /api/v1/admin/promotions", "PUT /api/v1/me/wishlist{id}", "POST /api/v1/membership",
    "GET /api/v1/seller", "POST /api/v1/admin/sellers", "POST /api/v1/admin/sellers{id}/products",
    "POST /api/v1/returns", "POST /api/v1/admin/returns{id}/authorize",
    "POST /api/v1/admin/returns{id}/receive", "POST /api/v1/admin/orders{id}/ship",
    "POST /api/v1/admin/orders{id}/deliver", "POST /api/v1/seller/orders{id}/ship",
}  # fmt: skip


def _run_twice(settings: Settings, db_url: str, tmp_path: Path, config: SimConfig, workers: int):
    traces = []
    for run in ("a", "b"):
        # Search answers from the database title match: the server's index is built by two
        # threads, so products with equal scores come back in an order that varies between
        # builds (a server matter, see docs/synthetic.md), which would steer later clicks.
        run_settings = settings.model_copy(
            update={
                "simulation_mode": True,
                "data_dir": tmp_path / run,
                "search_build_on_start": False,
            }
        )
        summary = run_inprocess(
            LocalShop(run_settings), config, workers=workers, ground_truth_dir=None, progress=False
        )
        traces.append(summary["trace"])
        truncate_all(db_url)
    return traces


def test_same_seed_same_event_sequence(settings: Settings, db_url: str, tmp_path: Path) -> None:
    """Two runs on fresh databases send the same events, up to server-assigned ids."""
    # Serial loading and shopping: concurrent requests would let the server assign product
    # ids in a different order and tie-break listings differently; the shoppers' own choices
    # never depend on it. (Bulk loading sends its batches one after another anyway.)
    config = SimConfig(
        seed=5, users=40, products=120, days=2, concurrency=1, load_concurrency=1, trace=True,
        search_wait_seconds=0,
    )  # fmt: skip
    traces = _run_twice(settings, db_url, tmp_path, config, workers=1)
    assert len(traces[0]) > 200
    assert traces[0] == traces[1]
    types = Counter(t[2] for t in traces[0])
    assert {"page_view", "product_view", "search", "category_view"} <= set(types)


def test_sharded_runs_keep_each_users_sequence(
    settings: Settings, db_url: str, tmp_path: Path
) -> None:
    """With two worker processes the interleaving differs, each user's own events do not."""
    config = SimConfig(
        seed=5, users=40, products=120, days=2, concurrency=1, trace=True, search_wait_seconds=0
    )
    traces = _run_twice(settings, db_url, tmp_path, config, workers=2)

    def by_user(trace):
        users: dict[int, list] = {}
        for record in trace:
            users.setdefault(record[0], []).append(record)
        return users

    a, b = by_user(traces[0]), by_user(traces[1])
    assert len(traces[0]) > 200 and set(a) == set(b)
    differing = [u for u in a if a[u] != b[u]]
    assert not differing, differing
    # Both shards did some work (users are split to even out each day's visits).
    owners = shard_owners(replace(config, shards=2), build_world(config)[1])
    assert {int(owners[u]) for u in a} == {0, 1}


# ------------------------------------------------------------------ a real server, HTTP only


@pytest.fixture
def live_server(settings: Settings, db_url: str, tmp_path: Path):
    """The shop in simulation mode under devtools' one uvicorn launcher."""
    data_dir = tmp_path / "server-data"
    password = secrets.token_urlsafe(12)
    db = Database(Settings(database_url=db_url).sqlalchemy_url)
    with db.session(write=True) as session:
        create_admin(session, email="sim-admin@example.com", password=password)
    db.dispose()
    env = {
        **server_env(),
        "DATABASE_URL": db_url,
        "STORELOOP_DATA_DIR": str(data_dir),
        "JWT_SECRET": secrets.token_urlsafe(48),
        "STORELOOP_SIMULATION_MODE": "true",
        "STORELOOP_RATE_LIMIT_ENABLED": "false",
    }
    with ServerProcess(env=env) as server:
        yield {
            "url": server.url,
            "admin": ("sim-admin@example.com", password),
            "data_dir": data_dir,
            "proc": server.proc,
        }


def _ctr_by_position(events: pd.DataFrame, depth: int = 10) -> np.ndarray:
    searches = events[events.type == "search"]
    shown = np.zeros(depth)
    for props in searches.props.dropna():
        results = json.loads(props).get("results") or ""
        n = len([p for p in results.split(",") if p])
        shown[: min(n, depth)] += 1
    clicks = events[(events.type == "search_click") & (events.position < depth)]
    clicked = np.bincount(clicks.position.astype(int), minlength=depth)[:depth]
    return clicked / np.maximum(shown, 1)


def test_plausible_commerce_over_http(live_server: dict, tmp_path: Path) -> None:
    config = SimConfig(seed=7, users=150, products=400, days=5, concurrency=8)
    truth_dir = tmp_path / "ground_truth"

    async def go():
        async with httpx.AsyncClient(base_url=live_server["url"], timeout=120) as http:
            return await simulate(Api(http), config, *live_server["admin"],
                                  ground_truth_dir=truth_dir)  # fmt: skip

    ctx, summary = asyncio.run(go())
    live_server["proc"].send_signal(signal.SIGINT)  # a clean stop closes the event segments
    assert live_server["proc"].wait(timeout=60) == 0
    table, bad = read_closed_segments(live_server["data_dir"] / "events")
    events = table.to_pandas()

    # Only public routes, and the server accepted every event batch.
    assert set(summary["route_calls"]) <= PUBLIC_ROUTES
    assert summary["events_rejected"] == 0 and bad == 0
    # Some shoppers save what they like but do not buy (simulation/habits.py): each save the
    # shop accepted is a server-side wishlist_add event the recommenders may weight.
    assert summary["wishlist_adds"] > 0
    assert (events.type == "wishlist_add").sum() == summary["wishlist_adds"]
    client_events = events[events.source == "client"]
    assert len(client_events) == summary["events"]

    # Popularity has a long tail: the top 1% of products get far more than 1% of views.
    views = client_events[client_events.type == "product_view"].product_id.value_counts()
    top = max(1, int(0.01 * config.products))
    top_share = views.iloc[:top].sum() / views.sum()

    # Position bias: click-through falls with the result position.
    ctr = _ctr_by_position(client_events)

    # Purchases (and cart adds, which exist even without checkout) sit in top categories.
    bought = ctx.purchases
    products = pd.read_parquet(truth_dir / "products.parquet")
    by_id = products.set_index("product_id")
    carts = client_events[client_events.type == "add_to_cart"]
    leaf_rank = np.argsort(np.argsort(-ctx.pop.cat_aff, axis=1), axis=1)
    slug_index = {ctx.catalog.leaf_slug(i): i for i in range(len(ctx.catalog.leaves))}
    in_top3 = [leaf_rank[u, int(ctx.catalog.leaf[i])] < 3 for u, i in bought]
    cart_users = {str(uid): u for u, uid in ctx.user_ids.items()}
    cart_top3 = [
        leaf_rank[cart_users[uid], slug_index[by_id.loc[int(p), "category"]]] < 3
        for uid, p in zip(carts.user_id, carts.product_id, strict=True)
        if uid in cart_users
    ]
    figures = {
        "sessions": summary["sessions"],
        "events": summary["events"],
        "orders": summary["orders"],
        "conversion_rate": round(summary["conversion_rate"], 3),
        "cart_abandonment_rate": round(summary["cart_abandonment_rate"], 3),
        "top1pct_view_share": round(float(top_share), 3),
        "ctr_by_position": [round(float(c), 3) for c in ctr],
        "purchases_in_top3_categories": round(float(np.mean(in_top3)), 3) if in_top3 else None,
        "signed_in_cart_adds_in_top3_categories": round(float(np.mean(cart_top3)), 3)
        if cart_top3
        else None,
        "declines": summary["declines"],
    }
    print("\nplausibility figures:", json.dumps(figures))

    assert summary["sessions"] > 100 and summary["events"] > 1500
    assert top_share > 0.05
    assert ctr[0] > ctr[4] and ctr[:3].mean() > ctr[5:10].mean() * 1.5
    assert 0.02 <= summary["conversion_rate"] <= 0.35
    assert 0.4 <= summary["cart_abandonment_rate"] <= 0.9
    if in_top3:
        # Random choice would put ~3 of 35 leaves, under 10%, in a user's top three.
        assert np.mean(in_top3) > 0.5
    assert cart_top3 and np.mean(cart_top3) > 0.5
    # Ground truth sits beside the data.
    for name in ("users", "products", "user_product_relevance", "query_product_relevance",
                 "queries", "user_category_affinity", "user_brand_affinity"):  # fmt: skip
        assert (truth_dir / f"{name}.parquet").exists(), name


# Live mode's own behaviour (it shops, then stops itself), not the database's: the shop's SQL
# under simulated shoppers is asserted on PostgreSQL by this file's other server tests.
@pytest.mark.db_agnostic
def test_live_mode_shops_for_a_while_and_stops(live_server: dict) -> None:
    """Live mode against a real server: a few shoppers, a few seconds, then it stops itself."""
    from simulation.live import run_live

    async def go():
        return await asyncio.wait_for(
            run_live(
                live_server["url"],
                shoppers=3,
                seed=3,
                users=20,
                products=80,
                admin_email=live_server["admin"][0],
                admin_password=live_server["admin"][1],
                think_seconds=0.2,
                verbose=False,
                stop_after=4.0,
            ),
            timeout=120,
        )

    counters = asyncio.run(go())
    # Each of the 3 shoppers starts at least one visit; a loaded machine may allow no more.
    assert counters["sessions"] >= 3, counters
    assert counters["events"] > 0 and counters["requests"] > counters["sessions"], counters
    assert counters["events_rejected"] == 0, counters


def test_shoppers_use_the_welcome_coupon_and_join_the_membership(
    live_server: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With every habit certain, each buyer tries the coupon once and loyal ones subscribe;
    the shop records the redemptions and memberships, so the demo data has them."""
    monkeypatch.setattr(habits, "COUPON_RATE", 1.0)
    monkeypatch.setattr(habits, "MEMBERSHIP_RATE", 10.0)  # x loyalty: every checkout tries
    config = SimConfig(seed=11, users=40, products=120, days=2, concurrency=8)

    async def go():
        async with httpx.AsyncClient(base_url=live_server["url"], timeout=120) as http:
            return await simulate(Api(http), config, *live_server["admin"])

    _, summary = asyncio.run(go())
    assert summary["orders"] > 0 and summary["coupon_orders"] > 0 and summary["memberships"] > 0
    # Each shopper redeems the welcome coupon at most once (max_uses_per_customer = 1).
    assert summary["coupon_orders"] <= summary["registrations"]
    admin = live_server["admin"]
    with httpx.Client(base_url=live_server["url"], timeout=60) as http:
        token = http.post(
            "/api/v1/auth/token", data={"username": admin[0], "password": admin[1]}
        ).json()["access_token"]
        promos = http.get(
            "/api/v1/admin/promotions", headers={"Authorization": f"Bearer {token}"}
        ).json()
    welcome = next(p for p in promos if p["code"] == habits.WELCOME_COUPON)
    # A cancelled order gives its use back (compensation), so uses never exceed the orders.
    assert 0 < welcome["uses"] <= summary["coupon_orders"]


def test_shoppers_buy_from_stores_and_send_things_back(
    live_server: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three brand stores sell part of the catalog, so some orders are marketplace orders
    (one payment, a parcel per seller); shoppers send back what they like least and the shop
    refunds it: the demo data has sellers' ledgers, returns and refunds."""
    monkeypatch.setattr(habits, "RETURN_RATE", 10.0)  # x dislike: most delivered lines go back
    config = SimConfig(seed=11, users=60, products=150, days=7, concurrency=8)

    async def go():
        async with httpx.AsyncClient(base_url=live_server["url"], timeout=120) as http:
            return await simulate(Api(http), config, *live_server["admin"])

    ctx, summary = asyncio.run(go())
    assert set(summary["route_calls"]) <= PUBLIC_ROUTES
    assert 0 < len(ctx.sellers) < config.products  # some products are the stores'
    assert summary["marketplace_orders"] > 0 and summary["multi_seller_orders"] >= 0
    assert summary["store_parcels_shipped"] > 0  # the stores ship their own parcels
    assert summary["returns_requested"] > 0
    assert summary["returns_refunded"] == summary["returns_requested"]
    admin = live_server["admin"]
    with httpx.Client(base_url=live_server["url"], timeout=60) as http:
        token = http.post(
            "/api/v1/auth/token", data={"username": admin[0], "password": admin[1]}
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        returns = http.get("/api/v1/admin/returns", headers=headers).json()
        ledgers = [
            http.get(f"/api/v1/admin/sellers/{seller}/ledger", headers=headers).json()
            for seller in sorted(set(ctx.sellers.values()))
        ]
    assert returns["count"] == summary["returns_requested"]
    assert {r["status"] for r in returns["data"]} == {"refunded"}
    # The stores' sales reached their payout ledgers (sale and commission per order).
    assert sum(ledger["by_kind"].get("sale", 0) for ledger in ledgers) > 0
