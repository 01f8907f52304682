"""Asset checks beside the warehouse assets.

Reconciliation, key and foreign-key checks are blocking: a warehouse that disagrees with the
shop must not feed models or notebooks, so a failure stops everything downstream in the run.
Freshness only warns, because a quiet night is not an error.
"""

from datetime import UTC, datetime, timedelta

import dagster as dg

from features.lake import SOURCE_TABLES, day_bounds, read_cutoff, source_totals
from features.warehouse import (
    FOREIGN_KEYS,
    KEYS,
    charge_mismatches,
    key_problems,
    latest_event_ts,
    ledger_totals,
    orphans,
    payout_mismatches,
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
            f"Row count and SUM({money}) equal the shop database's over every order created "
            "before the newest extracted partition's cut-off (a snapshot: orders placed while "
            "the run goes on do not count on either side)."
        ),
    )
    def _check(shop: ShopDatabase, lake: LakeDir, warehouse: Warehouse) -> dg.AssetCheckResult:
        _, last, _ = raw_partition_range(lake.directory, "orders")
        if last is None:
            return dg.AssetCheckResult(passed=True, metadata={"note": "no partition yet"})
        bound = min(
            day_bounds(last)[1],
            read_cutoff(lake.directory, "orders", last),
            read_cutoff(lake.directory, "order_items", last),
        )
        with shop.engine() as engine:
            src_rows, src_money = source_totals(
                engine, SOURCE_TABLES[raw], bound, money, by="created_at"
            )
        with warehouse.connect(read_only=True) as con:
            wh_rows, wh_money = warehouse_totals(con, table, bound, by="created_at")
        return dg.AssetCheckResult(
            passed=(src_rows, src_money) == (wh_rows, wh_money),
            metadata={
                "source_rows": src_rows,
                "warehouse_rows": wh_rows,
                "source_money_minor": src_money,
                "warehouse_money_minor": wh_money,
                "cut_off": bound.isoformat(),
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
    asset="fact_seller_order",
    name="seller_payouts_reconcile",
    blocking=True,
    additional_deps=["fact_seller_ledger"],
    description=(
        "The sellers' payout ledger in the warehouse equals the shop's (rows and SUM(amount) "
        "of entries created before the newest extracted partition's cut-off), and every booked "
        "(order, seller) follows from its lines: sale = the seller's line totals, commission = "
        "round_half_up(sale × rate), refunds never above what was booked."
    ),
)
def seller_payouts_reconcile(
    shop: ShopDatabase, lake: LakeDir, warehouse: Warehouse
) -> dg.AssetCheckResult:
    """What the platform owes sellers must be explainable by orders, twice over: the copy
    agrees with the shop, and the shop's ledger agrees with the order lines it came from."""
    _, last, _ = raw_partition_range(lake.directory, "seller_ledger")
    with warehouse.connect(read_only=True) as con:
        wrong = payout_mismatches(con)
        if last is None:
            src = wh = (0, 0)
            bound = None
        else:
            bound = min(day_bounds(last)[1], read_cutoff(lake.directory, "seller_ledger", last))
            wh = ledger_totals(con, bound)
    if last is not None:
        with shop.engine() as engine:
            src = source_totals(
                engine, SOURCE_TABLES["seller_ledger"], bound, "amount_minor", by="created_at"
            )
    return dg.AssetCheckResult(
        passed=src == wh and not wrong,
        metadata={
            "source_entries": src[0],
            "warehouse_entries": wh[0],
            "source_amount_minor": src[1],
            "warehouse_amount_minor": wh[1],
            "mismatched_seller_orders": len(wrong),
            "first_mismatches": ", ".join(f"{k} ({p})" for k, p in wrong[:5]) or "none",
            "cut_off": bound.isoformat() if bound else "no partition yet",
        },
    )


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


@dg.asset_check(
    asset="fact_order_charge",
    blocking=True,
    additional_deps=["fact_order"],
    description=(
        "Every priced order's parts add up (goods − discount + shipping + added tax + duty ="
        " total) and its total equals the order's total (what was charged)."
    ),
)
def fact_order_charge_adds_up(warehouse: Warehouse) -> dg.AssetCheckResult:
    with warehouse.connect(read_only=True) as con:
        parts, totals = charge_mismatches(con)
    return dg.AssetCheckResult(
        passed=parts == 0 and totals == 0,
        metadata={"parts_not_adding_up": parts, "totals_not_matching_order": totals},
    )


asset_checks = [
    _reconcile_check("fact_order", "orders", "total_minor"),
    _reconcile_check("fact_order_item", "order_items", "line_total_minor"),
    *(_key_check(t) for t in KEYS),
    *(_fk_check(*fk) for fk in FOREIGN_KEYS),
    seller_payouts_reconcile,
    fact_event_is_fresh,
    fact_order_charge_adds_up,
]
