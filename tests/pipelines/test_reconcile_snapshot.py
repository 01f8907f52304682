"""Reconciliation compares against the shop as of the extraction's cut-off, not a moving table.

Live shoppers keep ordering into today's partition while a whole-graph run goes on; the
warehouse is built from the extraction, so orders placed after it must not fail the check
("source 19 rows vs warehouse 17"), and orders moving on (shipped, delivered) must not either.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
from sqlalchemy import MetaData, Table, create_engine, select, update

from features.lake import read_cutoff
from pipelines.assets.raw import raw_events, raw_table_assets
from pipelines.checks import asset_checks
from pipelines.definitions import all_assets
from pipelines.resources import build_resources
from tests.pipelines.conftest import Shop


def _copy_order_placed_now(shop: Shop) -> None:
    """A new order (and its lines) created now, after the extraction, like a live shopper's."""
    engine = create_engine(shop.settings.sqlalchemy_url)
    try:
        meta = MetaData()
        orders = Table("orders", meta, autoload_with=engine)
        lines = Table("order_lines", meta, autoload_with=engine)
        now = datetime.now(UTC)
        with engine.begin() as conn:
            row = dict(conn.execute(select(orders).limit(1)).mappings().one())
            old_id = row["id"]
            row.update(id="ord_live_01", created_at=now, updated_at=now)
            if "idempotency_key" in row:
                row["idempotency_key"] = "live-01"
            conn.execute(orders.insert().values(**row))
            for line in conn.execute(select(lines).where(lines.c.order_id == old_id)).mappings():
                copy = {k: v for k, v in line.items() if k != "id"}
                copy["order_id"] = "ord_live_01"
                conn.execute(lines.insert().values(**copy))
            # An order extracted earlier moves on (a parcel delivered) after the extraction.
            conn.execute(update(orders).where(orders.c.id != "ord_live_01").values(updated_at=now))
    finally:
        engine.dispose()


def test_orders_placed_during_a_run_do_not_fail_reconciliation(shop: Shop) -> None:
    resources = build_resources(shop.data_dir, shop.settings.sqlalchemy_url)
    raw = [*raw_table_assets, raw_events]
    assert dg.materialize(raw, resources=resources, partition_key=shop.day).success
    cutoff = read_cutoff(shop.data_dir / "lake", "orders", shop.day)
    assert cutoff <= datetime.now(UTC) - timedelta(seconds=1)

    _copy_order_placed_now(shop)

    downstream = [a for a in all_assets if a not in raw]
    result = dg.materialize(
        [*downstream, *asset_checks],
        resources=resources,
        selection=dg.AssetSelection.assets(*downstream) | dg.AssetSelection.all_asset_checks(),
        raise_on_error=False,
    )
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    for name in ("fact_order_reconciles_with_shop", "fact_order_item_reconciles_with_shop"):
        assert checks[name].passed, checks[name].metadata
    assert checks["fact_order_reconciles_with_shop"].metadata["source_rows"].value == (
        shop.orders.orders
    )
