"""Asset checks beside the warehouse assets.

Reconciliation, key and foreign-key checks are blocking: a warehouse that disagrees with the
shop must not feed models or notebooks, so a failure stops everything downstream in the run.
Freshness only warns, because a quiet night is not an error.
"""

from datetime import UTC, datetime, timedelta

import dagster as dg

from features.lake import SOURCE_TABLES, day_bounds, source_totals
from features.warehouse import (
    FOREIGN_KEYS,
    KEYS,
    key_problems,
    latest_event_ts,
    orphans,
    raw_partition_range,
    warehouse_totals,
)
from pipelines.resources import LakeDir, ShopDatabase, Warehouse

#: Events older than this make the freshness check warn.
FRESHNESS_HOURS = 36


def _reconcile_check(table: str, raw: str, money: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=table,
        name=f"{table}_reconciles_with_shop",
        blocking=True,
        description=(
            f"Row count and SUM({money}) equal the shop database's, over every row changed "
            "before the end of the newest extracted partition."
        ),
    )
    def _check(shop: ShopDatabase, lake: LakeDir, warehouse: Warehouse) -> dg.AssetCheckResult:
        _, last, _ = raw_partition_range(lake.directory, "orders")
        if last is None:
            return dg.AssetCheckResult(passed=True, metadata={"note": "no partition yet"})
        bound = day_bounds(last)[1]
        with shop.engine() as engine:
            src_rows, src_money = source_totals(engine, SOURCE_TABLES[raw], bound, money)
        with warehouse.connect(read_only=True) as con:
            wh_rows, wh_money = warehouse_totals(con, table, bound)
        return dg.AssetCheckResult(
            passed=(src_rows, src_money) == (wh_rows, wh_money),
            metadata={
                "source_rows": src_rows,
                "warehouse_rows": wh_rows,
                "source_money_minor": src_money,
                "warehouse_money_minor": wh_money,
                "window_end": bound.isoformat(),
            },
        )

    return _check


def _key_check(table: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=table,
        name=f"{table}_key_unique_not_null",
        blocking=True,
        description=f"`{KEYS[table]}` is never null and never repeated.",
    )
    def _check(warehouse: Warehouse) -> dg.AssetCheckResult:
        with warehouse.connect(read_only=True) as con:
            nulls, dupes = key_problems(con, table)
        return dg.AssetCheckResult(
            passed=nulls == 0 and dupes == 0,
            metadata={"null_keys": nulls, "duplicate_keys": dupes},
        )

    return _check


def _fk_check(table: str, column: str, ref: str, ref_col: str) -> dg.AssetChecksDefinition:
    # Attach to whichever side is built last, so the check never runs before both exist.
    owner, other = (ref, table) if (table, ref) == ("fact_order", "dim_user") else (table, ref)

    @dg.asset_check(
        asset=owner,
        name=f"{table}_{column}_resolves",
        blocking=True,
        additional_deps=[other],
        description=f"Every `{table}.{column}` exists in `{ref}.{ref_col}`.",
    )
    def _check(warehouse: Warehouse) -> dg.AssetCheckResult:
        with warehouse.connect(read_only=True) as con:
            missing = orphans(con, table, column, ref, ref_col)
        return dg.AssetCheckResult(passed=missing == 0, metadata={"orphans": missing})

    return _check


@dg.asset_check(
    asset="fact_event",
    description=f"The newest event is less than {FRESHNESS_HOURS} h old (warns only).",
)
def fact_event_is_fresh(warehouse: Warehouse) -> dg.AssetCheckResult:
    """A stalled event log or a stopped sensor shows up here before anyone reads a notebook."""
    with warehouse.connect(read_only=True) as con:
        newest = latest_event_ts(con)
    if newest is None:
        return dg.AssetCheckResult(
            passed=False, severity=dg.AssetCheckSeverity.WARN, metadata={"newest": "none"}
        )
    age = datetime.now(UTC) - newest.astimezone(UTC)
    return dg.AssetCheckResult(
        passed=age < timedelta(hours=FRESHNESS_HOURS),
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "newest_event": newest.isoformat(),
            "age_hours": round(age.total_seconds() / 3600, 2),
        },
    )


asset_checks = [
    _reconcile_check("fact_order", "orders", "total_minor"),
    _reconcile_check("fact_order_item", "order_items", "line_total_minor"),
    *(_key_check(t) for t in KEYS),
    *(_fk_check(*fk) for fk in FOREIGN_KEYS),
    fact_event_is_fresh,
]
