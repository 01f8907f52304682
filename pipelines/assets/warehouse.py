"""Warehouse layer: DuckDB tables rebuilt whole from the lake.

One asset per table, each a call to ``features.warehouse.build_table``. They are not
partitioned: every table is a function of all raw partitions (latest version per key), so a
backfill of any day is picked up by the next rebuild and no day can be counted twice.
"""

import dagster as dg

from features.warehouse import (
    TABLES,
    build_table,
    preview_markdown,
    raw_partition_range,
    stage_raw,
    table_stats,
)
from pipelines.resources import LakeDir, Warehouse

#: Raw inputs of each table (warehouse inputs come from ``features.warehouse.TABLES``).
RAW_INPUTS: dict[str, tuple[str, ...]] = {
    "dim_category": ("categories",),
    "dim_product": ("products", "categories", "stock_movements", "orders", "order_items"),
    "fact_order": ("orders", "order_items", "payments", "shipments"),
    "fact_order_item": ("order_items", "orders", "products"),
    "fact_order_charge": ("order_charges", "orders"),
    "fact_promotion_redemption": ("promotion_redemptions", "orders"),
    "dim_promotion": ("promotions",),
    "dim_user": ("users",),
    "fact_event": ("events", "session_links"),
    "dim_seller": ("sellers", "seller_products", "seller_ledger"),
    "fact_seller_ledger": ("seller_ledger",),
    "fact_seller_order": (
        "order_items",
        "orders",
        "sellers",
        "seller_products",
        "seller_ledger",
        "seller_shipments",
    ),
    "fact_membership": ("memberships", "membership_charges"),
    "fact_return": ("returns", "return_lines"),
    "fact_dispute": ("disputes",),
}

DESCRIPTIONS: dict[str, str] = {
    "dim_category": "Categories with their slug path and readable name path.",
    "dim_product": "Current products with category path, stock and units sold.",
    "fact_order": "One row per order: amounts, status, payment and shipment.",
    "fact_order_item": "One row per order line, with the order's user, status and date.",
    "fact_order_charge": "One row per priced order: discount, shipping, tax, duty, total.",
    "fact_promotion_redemption": "One row per promotion applied to an order (held/released).",
    "dim_promotion": "Coupons and automatic promotions with uses and discount given.",
    "dim_user": "Users (no personal data) with signup cohort and order totals.",
    "fact_event": "Every clickstream event once, with the session-resolved user.",
    "fact_search": "One row per search: query, results shown in order, clicks with positions.",
    "search_impressions": "One row per (search, shown product): clicked / carted / purchased.",
    "fact_session": "Events cut into sessions at 30 minutes of inactivity.",
    "fact_rec_impression": "Recommendation impressions with model version and click outcome.",
    "daily_sales": "Orders, revenue and customers per UTC day and currency.",
    "daily_funnel": "Sessions per day: visit → product view → cart → checkout → order.",
    "interactions": "Training input for recommenders: (user, product, event_type, ts).",
    "dim_seller": "Marketplace sellers with commission rate, products and what they are owed.",
    "fact_seller_ledger": "The sellers' payout ledger, one row per entry (signed amounts).",
    "fact_seller_order": "One row per (order, seller): lines, parcel and the ledger they booked.",
    "fact_membership": "Memberships with status, period and the charges made for them.",
    "fact_return": "Return requests with units restocked or written off and the refund.",
    "fact_dispute": "Payment disputes: amount, reason, frozen while open, lost or won.",
}


def _warehouse_asset(name: str) -> dg.AssetsDefinition:
    raw = RAW_INPUTS.get(name, ())
    deps = [dg.AssetKey(f"raw_{r}") for r in raw] + [dg.AssetKey(t) for t in TABLES[name]]

    @dg.asset(
        name=name,
        group_name="warehouse",
        deps=deps,
        kinds={"duckdb"},
        description=DESCRIPTIONS[name],
        tags={"layer": "warehouse"},
    )
    def _asset(lake: LakeDir, warehouse: Warehouse) -> dg.MaterializeResult:
        with warehouse.connect() as con:
            stage_raw(con, lake.directory)
            rows = build_table(con, name, warehouse.rec_ids())
            stats = table_stats(con, name)
            metadata: dict[str, object] = {
                "dagster/row_count": dg.MetadataValue.int(rows),
                "columns": ", ".join(stats.columns),
                "preview": dg.MetadataValue.md(preview_markdown(con, name)),
            }
        for table in raw:
            first, last, count = raw_partition_range(lake.directory, table)
            metadata[f"raw_{table}_partitions"] = f"{first} … {last} ({count})" if count else "none"
        return dg.MaterializeResult(metadata=metadata)

    return _asset


warehouse_assets = [_warehouse_asset(name) for name in TABLES]
