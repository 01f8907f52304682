"""The sellers' payout ledger in the lakehouse: extracted, modelled, and reconciled by a
blocking asset check against the shop and against the order lines it was booked from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
from sqlalchemy import select, update

from features.warehouse import connect
from pipelines.checks import seller_payouts_reconcile
from pipelines.definitions import all_assets
from pipelines.resources import build_resources
from serving.core import clock
from serving.core.clock import utcnow
from serving.db.engine import Database
from serving.db.tables import User
from serving.db.tables.marketplace import SellerLedgerEntry, SellerProduct
from serving.db.tables.orders import OrderLine
from serving.services.marketplace import fulfilment, sellers
from tests.pipelines.conftest import Shop

RAW = (
    "orders",
    "order_items",
    "payments",
    "shipments",
    "sellers",
    "seller_products",
    "seller_ledger",
    "seller_shipments",
)
WAREHOUSE = ("fact_order", "dim_seller", "fact_seller_ledger", "fact_seller_order")


def _make_marketplace(shop: Shop) -> dict:
    """Two of the catalog's products move to a seller; the delivered orders are booked."""
    db = Database(shop.settings.sqlalchemy_url)
    # Booked an hour ago (inside today's partition): an extraction's snapshot leaves out rows
    # of its last seconds, on both sides of the comparison.
    now = datetime.now(UTC)
    token = clock.set_simulated_now(
        max(now - timedelta(hours=1), now.replace(hour=0, minute=0, second=2))
    )
    try:
        with db.session(write=True) as s:
            user_id = s.scalar(select(User.id).where(User.role == "customer").order_by(User.id))
            seller = sellers.register(
                s, user_id=user_id, display_name="Market One", commission_bps=1250
            )
            product_ids = sorted(set(s.scalars(select(OrderLine.product_id))))[:2]
            for pid in product_ids:
                s.add(SellerProduct(product_id=pid, seller_id=seller["id"], created_at=utcnow()))
            s.commit()
        with db.session(write=True) as s:
            report = fulfilment.settle_orders(s)
        with db.session() as s:
            owed = sum(
                s.scalars(
                    select(SellerLedgerEntry.amount_minor).where(
                        SellerLedgerEntry.seller_id == seller["id"]
                    )
                )
            )
    finally:
        clock.reset_simulated_now(token)
        db.dispose()
    assert report["parcels_opened"] > 0
    return {"seller_id": seller["id"], "owed": owed}


def _run(shop: Shop) -> dg.ExecuteInProcessResult:
    selection = [
        a for a in all_assets if a.key.path[-1] in {f"raw_{t}" for t in RAW} | set(WAREHOUSE)
    ]
    return dg.materialize(
        [*selection, seller_payouts_reconcile],
        resources=build_resources(shop.data_dir, shop.settings.sqlalchemy_url),
        partition_key=shop.day,
        raise_on_error=False,
    )


def _check(result: dg.ExecuteInProcessResult):
    (evaluation,) = [
        c
        for c in result.get_asset_check_evaluations()
        if c.check_name == "seller_payouts_reconcile"
    ]
    return evaluation


def test_payout_ledger_reconciles_and_dim_seller_shows_what_is_owed(shop: Shop) -> None:
    made = _make_marketplace(shop)
    result = _run(shop)
    evaluation = _check(result)
    assert evaluation.passed, evaluation.metadata
    assert evaluation.metadata["source_entries"].value > 0
    con = connect(shop.data_dir / "warehouse.duckdb", read_only=True)
    try:
        owed = con.execute(
            "SELECT owed_minor, sales_minor, commission_minor FROM dim_seller WHERE seller_id = ?",
            [made["seller_id"]],
        ).fetchall()[0]
        booked = con.execute(
            "SELECT COUNT(*), SUM(sale_minor), SUM(lines_total_minor) FROM fact_seller_order "
            "WHERE is_booked"
        ).fetchall()[0]
        parcels = con.execute(
            "SELECT COUNT(*) FROM fact_seller_order WHERE parcel_status = 'label_created'"
        ).fetchall()[0][0]
    finally:
        con.close()
    assert owed[0] == made["owed"] == owed[1] + owed[2]
    assert booked[0] > 0 and booked[1] == booked[2]
    assert parcels == booked[0]


def test_a_ledger_that_does_not_follow_from_the_order_lines_fails_the_check(shop: Shop) -> None:
    _make_marketplace(shop)
    db = Database(shop.settings.sqlalchemy_url)
    try:
        with db.session(write=True) as s:
            first = s.scalar(
                select(SellerLedgerEntry.id)
                .where(SellerLedgerEntry.kind == "commission")
                .order_by(SellerLedgerEntry.id)
            )
            # A commission one cent off what the rate gives.
            s.execute(
                update(SellerLedgerEntry)
                .where(SellerLedgerEntry.id == first)
                .values(amount_minor=SellerLedgerEntry.amount_minor - 1)
            )
            s.commit()
    finally:
        db.dispose()
    evaluation = _check(_run(shop))
    assert not evaluation.passed
    assert evaluation.metadata["mismatched_seller_orders"].value == 1
    assert "(commission)" in evaluation.metadata["first_mismatches"].value
