"""The whole lakehouse on a small shop: reconciliation, idempotency, quarantine, automation.

Runs on the backend chosen by ``--db`` (SQLite or PostgreSQL) through the shared fixtures.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
from sqlalchemy import create_engine, text

from features.warehouse import connect
from pipelines.automation import closed_segments_sensor, nightly_lakehouse
from pipelines.checks import asset_checks
from pipelines.definitions import all_assets, build_definitions
from pipelines.resources import EventLogDir, LakeDir, build_resources
from tests.pipelines.conftest import Shop
from tests.pipelines.shop_builder import event, write_segment

RAW_TABLES = (
    "categories",
    "products",
    "users",
    "orders",
    "order_items",
    "payments",
    "shipments",
    "reviews",
    "stock_movements",
    "session_links",
    "order_charges",
    "promotions",
    "promotion_redemptions",
    "events",
)


def _run(
    shop: Shop, selection: list | None = None, partitioned: bool = True
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        selection or [*all_assets, *asset_checks],
        resources=build_resources(shop.data_dir, shop.settings.sqlalchemy_url),
        partition_key=shop.day if partitioned else None,
        raise_on_error=False,
    )


def _source(shop: Shop, sql: str) -> int:
    engine = create_engine(shop.settings.sqlalchemy_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(sql)).scalar_one())
    finally:
        engine.dispose()


def _lake_digests(shop: Shop) -> dict[str, str]:
    root = shop.data_dir / "lake"
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.glob("raw/*/date=*/part-0.parquet"))
        + sorted(root.glob("quarantine/**/*.jsonl"))
    }


def _warehouse_hashes(path: Path) -> dict[str, str]:
    con = connect(path, read_only=True)
    try:
        tables = [r[0] for r in con.execute("SHOW TABLES").fetchall()]
        out = {}
        for table in tables:
            rows = con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
            out[table] = hashlib.sha256(repr(rows).encode()).hexdigest()
        return out
    finally:
        con.close()


def test_whole_graph_reconciles_and_reruns_identically(shop: Shop) -> None:
    result = _run(shop)
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert checks and all(c.passed for c in checks), [c.check_name for c in checks if not c.passed]

    # Raw layer: one file per table for the day; events quarantined and de-duplicated.
    for table in RAW_TABLES:
        assert (shop.data_dir / "lake" / "raw" / table / f"date={shop.day}").is_dir(), table
    events_mat = result.asset_materializations_for_node("raw_events")[0]
    assert events_mat.metadata["quarantined"].value == shop.events.bad_lines
    assert events_mat.metadata["duplicates_dropped"].value == 1
    quarantine = shop.data_dir / "lake" / "quarantine" / "events" / f"date={shop.day}"
    assert len((quarantine / "part-0.jsonl").read_text().splitlines()) == shop.events.bad_lines

    con = connect(shop.data_dir / "warehouse.duckdb", read_only=True)
    try:

        def one(sql: str) -> int:
            return int(con.execute(sql).fetchall()[0][0])

        # Every table's rows and money equal the source.
        assert one("SELECT COUNT(*) FROM fact_order") == _source(
            shop, "SELECT COUNT(*) FROM orders"
        )
        assert (
            one("SELECT SUM(total_minor) FROM fact_order")
            == _source(shop, "SELECT SUM(total_minor) FROM orders")
            == shop.orders.total_minor
        )
        assert (
            one("SELECT COUNT(*) FROM fact_order_item")
            == _source(shop, "SELECT COUNT(*) FROM order_lines")
            == shop.orders.lines
        )
        assert one("SELECT SUM(line_total_minor) FROM fact_order_item") == _source(
            shop, "SELECT SUM(line_total_minor) FROM order_lines"
        )
        assert one("SELECT COUNT(*) FROM dim_product") == _source(
            shop, "SELECT COUNT(*) FROM products"
        )
        assert one("SELECT COUNT(*) FROM dim_category") == _source(
            shop, "SELECT COUNT(*) FROM categories"
        )
        assert one("SELECT COUNT(*) FROM dim_user") == _source(shop, "SELECT COUNT(*) FROM users")
        assert one("SELECT SUM(stock_on_hand) FROM dim_product") == _source(
            shop, "SELECT SUM(delta_on_hand) FROM stock_movements"
        )
        assert one("SELECT SUM(paid_minor) FROM fact_order") == _source(
            shop, "SELECT SUM(amount_minor) FROM payments"
        )
        charged = _source(
            shop,
            "SELECT SUM(total_minor) FROM orders WHERE status IN "
            "('paid', 'fulfilled', 'shipped', 'delivered')",
        )
        assert one("SELECT SUM(revenue_minor) FROM daily_sales") == charged
        assert one("SELECT COUNT(*) FROM fact_event") == shop.events.unique_events
        assert one("SELECT COUNT(*) FROM fact_search") == shop.events.searches
        assert one("SELECT COUNT(*) FROM fact_search WHERE is_zero_result") == 3
        assert one("SELECT COUNT(*) FROM fact_rec_impression") == shop.events.rec_impressions
        assert one("SELECT COUNT(*) FROM fact_rec_impression WHERE clicked") == 3
        assert one("SELECT COUNT(DISTINCT model_version) FROM fact_rec_impression") == 2
        # The version comes from the signed rec id, not from what the client claimed.
        claimed = con.execute(
            "SELECT DISTINCT model_version FROM fact_rec_impression "
            "WHERE claimed_model_version = 'v9'"
        ).fetchall()
        assert claimed == [("v1",)]
        # Both props shapes (JSON list, comma text) give the four shown products.
        assert one("SELECT COUNT(*) FROM search_impressions") == 12
        assert one("SELECT COUNT(*) FROM search_impressions WHERE clicked AND added_to_cart") == 3
        assert one("SELECT MIN(results_shown) FROM fact_search WHERE NOT is_zero_result") == 4
        assert one("SELECT COUNT(*) FROM fact_session") == 6  # anonymous visit + later session
        assert one("SELECT SUM(visits) FROM daily_funnel") == 6
        # Pricing facts: one charge row per order, its total the order's; one redemption.
        assert one("SELECT COUNT(*) FROM fact_order_charge") == _source(
            shop, "SELECT COUNT(*) FROM order_charges"
        )
        assert one("SELECT SUM(total_minor) FROM fact_order_charge") == shop.orders.total_minor
        assert one("SELECT SUM(tax_minor) FROM fact_order_charge") == _source(
            shop, "SELECT SUM(tax_minor) FROM order_charges"
        )
        assert one("SELECT SUM(tax_added_minor) FROM fact_order_charge") == 0  # VAT inside
        assert one("SELECT charged_orders FROM dim_promotion WHERE code = 'WELCOME'") == 1
        assert one("SELECT discount_given_minor FROM dim_promotion") == 499
        assert one("SELECT COUNT(*) FROM fact_promotion_redemption WHERE is_charged") == 1
        assert one("SELECT COUNT(*) FROM interactions WHERE event_type = 'purchase'") == _source(
            shop,
            "SELECT COUNT(*) FROM order_lines l JOIN orders o ON o.id = l.order_id "
            "WHERE o.status IN ('paid', 'fulfilled', 'shipped', 'delivered')",
        )
    finally:
        con.close()

    # A second run of the same partition changes nothing, byte for byte / row for row.
    lake_before = _lake_digests(shop)
    warehouse_before = _warehouse_hashes(shop.data_dir / "warehouse.duckdb")
    raw_and_warehouse = [
        a
        for a in all_assets
        if a.group_names_by_key and set(a.group_names_by_key.values()) <= {"raw", "warehouse"}
    ]
    again = _run(shop, raw_and_warehouse)
    assert again.success
    assert _lake_digests(shop) == lake_before
    assert _warehouse_hashes(shop.data_dir / "warehouse.duckdb") == warehouse_before


def test_blocking_check_stops_downstream(shop: Shop) -> None:
    """A source row the warehouse lacks fails reconciliation and skips what depends on it."""
    assert _run(shop).success
    engine = create_engine(shop.settings.sqlalchemy_url)
    with engine.begin() as conn:
        # Change history under the warehouse: the order now says another total.
        conn.execute(
            text("UPDATE orders SET total_minor = total_minor + 1 WHERE id = 'ord_000001'")
        )
    engine.dispose()
    selection = [a for a in all_assets if a.key.path[-1] in {"fact_order", "dim_user"}]
    checks = [
        c for c in asset_checks if any(k.asset_key.path[-1] == "fact_order" for k in c.check_keys)
    ]
    result = _run(shop, [*selection, *checks], partitioned=False)
    failed = [c.check_name for c in result.get_asset_check_evaluations() if not c.passed]
    assert "fact_order_reconciles_with_shop" in failed
    materialized = {
        e.asset_key.path[-1] for e in result.get_asset_materialization_events() if e.asset_key
    }
    assert "fact_order" in materialized
    assert "dim_user" not in materialized


def test_torn_segment_is_quarantined_not_fatal(tmp_path: Path) -> None:
    from features.lake import extract_events

    now = datetime.now(UTC).replace(hour=1, minute=0, second=0, microsecond=0)
    good = [json.dumps(event("page_view", now, session_id="x")).encode() + b"\n"]
    write_segment(tmp_path / "events", now, [*good, b'{"event_id": "a", "ty'], seq=1)
    result = extract_events(tmp_path / "events", tmp_path / "lake", now.date().isoformat())
    assert (result.rows, result.quarantined) == (1, 1)
    assert pq.read_table(result.path).num_rows == 1


def test_definitions_load(tmp_path: Path) -> None:
    defs = build_definitions(tmp_path, f"sqlite:///{tmp_path / 'x.db'}")
    dg.Definitions.validate_loadable(defs)
    groups = {g for a in all_assets for g in a.group_names_by_key.values()}
    assert groups == {"raw", "warehouse", "features", "models", "search"}
    assert defs.resolve_job_def("lakehouse_daily") is not None
    import pipelines

    assert isinstance(pipelines.defs, dg.Definitions)


def test_sensor_requests_new_days_and_remembers_segments(tmp_path: Path) -> None:
    events_dir = tmp_path / "events"
    now = datetime.now(UTC).replace(hour=2, minute=0, second=0, microsecond=0)
    write_segment(events_dir, now, [json.dumps(event("page_view", now)).encode() + b"\n"], seq=1)
    resources = {
        "events": EventLogDir(path=str(events_dir)),
        "lake": LakeDir(path=str(tmp_path / "lake")),
    }
    with dg.build_sensor_context(resources=resources) as ctx:
        first = closed_segments_sensor(ctx)
    assert [r.partition_key for r in first.run_requests] == [now.date().isoformat()]
    with dg.build_sensor_context(resources=resources, cursor=first.cursor) as ctx:
        assert isinstance(closed_segments_sensor(ctx), dg.SkipReason)
    write_segment(events_dir, now, [json.dumps(event("page_view", now)).encode() + b"\n"], seq=2)
    with dg.build_sensor_context(resources=resources, cursor=first.cursor) as ctx:
        third = closed_segments_sensor(ctx)
    assert len(third.run_requests) == 1


def test_nightly_schedule_targets_yesterday() -> None:
    moment = datetime(2026, 3, 2, 0, 30, tzinfo=UTC)
    with dg.build_schedule_context(scheduled_execution_time=moment) as ctx:
        request = nightly_lakehouse(ctx)
    assert request.partition_key == "2026-03-01"


def test_sensor_skips_segments_the_backfill_already_read(tmp_path: Path) -> None:
    """After `make run`'s first backfill the sensor starts no run for history it already has."""
    from features.lake import extract_events

    events_dir = tmp_path / "events"
    now = datetime.now(UTC).replace(hour=2, minute=0, second=0, microsecond=0)
    write_segment(events_dir, now, [json.dumps(event("page_view", now)).encode() + b"\n"], seq=1)
    extract_events(events_dir, tmp_path / "lake", now.date().isoformat())
    resources = {
        "events": EventLogDir(path=str(events_dir)),
        "lake": LakeDir(path=str(tmp_path / "lake")),
    }
    with dg.build_sensor_context(resources=resources) as ctx:
        first = closed_segments_sensor(ctx)
    assert first.run_requests == [] and first.cursor
    write_segment(events_dir, now, [json.dumps(event("page_view", now)).encode() + b"\n"], seq=2)
    with dg.build_sensor_context(resources=resources, cursor=first.cursor) as ctx:
        second = closed_segments_sensor(ctx)
    assert [r.partition_key for r in second.run_requests] == [now.date().isoformat()]
