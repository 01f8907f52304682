"""The DuckDB warehouse: SQL that turns the raw Parquet lake into dimensions, facts and metrics.

Plain Python + DuckDB so that Dagster assets, the benchmark and tests run the same statements.
Each warehouse table is rebuilt whole from the lake (``CREATE OR REPLACE``): the lake is the
history, the warehouse a pure function of it, so a re-run can never double-count and a fix to a
query repairs every past day at once. Rebuilding 1M events takes seconds in DuckDB, which is
cheaper than the bookkeeping an incremental merge would need.

Staging (temporary views, per connection) resolves the lake's versioning: a mutable row may sit
in several daily partitions, and the latest change time (then the latest partition) wins.
Column meanings are documented in ``docs/warehouse.md``.

One module past 500 lines on purpose: it is mostly SQL, one statement per warehouse table,
kept in build order so a reader follows each table from the staging views it depends on.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import duckdb
import pyarrow as pa

from features.lake import EVENT_SCHEMA, SOURCE_TABLES
from features.rec_ids import RecIdVerifier

__all__ = [
    "CHARGED_STATUSES",
    "SESSION_GAP_MINUTES",
    "TABLES",
    "build_table",
    "build_warehouse",
    "connect",
    "preview_markdown",
    "raw_partition_range",
    "stage_raw",
    "table_stats",
]

#: Order states in which money was taken and kept (mirrors the shop's order state machine).
CHARGED_STATUSES: Final = ("paid", "fulfilled", "shipped", "delivered")
#: Inactivity that ends a session.
SESSION_GAP_MINUTES: Final = 30
#: An add-to-cart this soon after a search counts as the search's outcome.
SEARCH_CART_WINDOW_MINUTES: Final = 30
#: A purchase this soon after a search counts as the search's outcome.
SEARCH_PURCHASE_WINDOW_DAYS: Final = 7

_RAW_TABLES: Final = (*SOURCE_TABLES, "events")
_CHARGED_SQL: Final = ", ".join(f"'{s}'" for s in CHARGED_STATUSES)


def connect(path: Path | str, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse in UTC, so a ``CAST(ts AS DATE)`` is a UTC day everywhere."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), read_only=read_only)
    con.execute("SET TimeZone = 'UTC'")
    # No progress bars on stdout: pipelines print one line per step, Dagster logs to a file.
    con.execute("SET enable_progress_bar = false")
    return con


def _raw_schema(name: str) -> pa.Schema:
    schema = EVENT_SCHEMA if name == "events" else SOURCE_TABLES[name].schema
    return schema.append(pa.field("date", pa.date32()))


def stage_raw(con: duckdb.DuckDBPyConnection, lake_dir: Path | str) -> None:
    """Create ``raw_<table>`` views over every partition and ``cur_<table>`` latest versions.

    A table with no partition yet (e.g. before its first run) gets an empty typed table, so
    every downstream query still runs.
    """
    lake = Path(lake_dir)
    for name in _RAW_TABLES:
        folder = lake / "raw" / name
        if any(folder.glob("date=*/part-0.parquet")):
            pattern = str(folder / "date=*" / "part-0.parquet").replace("'", "''")
            con.execute(
                f"CREATE OR REPLACE TEMP VIEW raw_{name} AS SELECT * FROM read_parquet("
                f"'{pattern}', hive_partitioning = true, hive_types = {{'date': DATE}})"
            )
        else:
            empty = _raw_schema(name).empty_table()
            con.register(f"_empty_{name}", empty)
            con.execute(f"CREATE OR REPLACE TEMP TABLE raw_{name} AS SELECT * FROM _empty_{name}")
            con.unregister(f"_empty_{name}")
    for name, spec in SOURCE_TABLES.items():
        if spec.parent is not None:
            continue
        key = ", ".join(spec.key)
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW cur_{name} AS SELECT * EXCLUDE (_rn) FROM ("
            f"SELECT *, row_number() OVER (PARTITION BY {key} "
            f"ORDER BY {spec.time_column} DESC, date DESC) AS _rn FROM raw_{name}) WHERE _rn = 1"
        )
    # Lines belong to the partition of their parent's version (order lines to their order,
    # return lines to their return): join on (parent, date).
    lake_name = {spec.source: name for name, spec in SOURCE_TABLES.items() if spec.parent is None}
    for name, spec in SOURCE_TABLES.items():
        if spec.parent is None:
            continue
        p = spec.parent
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW cur_{name} AS SELECT c.* FROM raw_{name} c "
            f"JOIN cur_{lake_name[p.table]} o ON c.{p.foreign_key} = o.{p.key} AND c.date = o.date"
        )
    con.execute(
        "CREATE OR REPLACE TEMP VIEW cur_events AS SELECT * EXCLUDE (_rn) FROM ("
        "SELECT *, row_number() OVER (PARTITION BY event_id ORDER BY server_ts, date) AS _rn "
        "FROM raw_events) WHERE _rn = 1"
    )


# Each statement builds one table from cur_* views and tables built before it.
_SQL: Final[dict[str, str]] = {
    "dim_category": """
        WITH RECURSIVE tree(id, name_path, lvl) AS (
            SELECT id, name, 0 FROM cur_categories WHERE parent_id IS NULL
            UNION ALL
            SELECT c.id, t.name_path || ' > ' || c.name, t.lvl + 1
            FROM cur_categories c JOIN tree t ON c.parent_id = t.id
            WHERE t.lvl < 64
        )
        SELECT c.id AS category_id, c.parent_id, c.slug, c.name, c.path,
               t.name_path, c.depth, split_part(c.path, '/', 1) AS top_level_slug,
               c.created_at, c.updated_at
        FROM cur_categories c LEFT JOIN tree t ON t.id = c.id
        ORDER BY c.id
    """,
    "dim_product": """
        WITH stock AS (
            SELECT product_id, SUM(delta_on_hand) AS on_hand, SUM(delta_reserved) AS reserved
            FROM cur_stock_movements GROUP BY product_id
        ), sold AS (
            SELECT i.product_id, SUM(i.quantity) AS units, SUM(i.line_total_minor) AS revenue
            FROM cur_order_items i JOIN cur_orders o ON o.id = i.order_id
            WHERE o.status IN ({charged}) GROUP BY i.product_id
        )
        SELECT p.id AS product_id, p.sku, p.title, p.brand, p.category_id,
               c.path AS category_path, split_part(c.path, '/', 1) AS top_category,
               p.price_minor, p.currency, p.status, p.rating_avg, p.rating_count,
               p.attributes, p.description, COALESCE(s.on_hand, 0) AS stock_on_hand,
               COALESCE(s.reserved, 0) AS stock_reserved,
               COALESCE(sold.units, 0) AS units_sold,
               COALESCE(sold.revenue, 0) AS revenue_minor,
               p.created_at, p.updated_at
        FROM cur_products p
        LEFT JOIN cur_categories c ON c.id = p.category_id
        LEFT JOIN stock s ON s.product_id = p.id
        LEFT JOIN sold ON sold.product_id = p.id
        ORDER BY p.id
    """,
    "fact_order": """
        WITH lines AS (
            SELECT order_id, COUNT(*) AS lines, SUM(quantity) AS units,
                   SUM(line_total_minor) AS lines_total_minor
            FROM cur_order_items GROUP BY order_id
        )
        SELECT o.id AS order_id, o.user_id, o.status, o.status IN ({charged}) AS is_charged,
               o.currency, o.subtotal_minor, o.shipping_minor, o.total_minor,
               o.payment_method, o.from_cart,
               COALESCE(l.lines, 0) AS lines, COALESCE(l.units, 0) AS units,
               COALESCE(l.lines_total_minor, 0) AS lines_total_minor,
               p.status AS payment_status, p.amount_minor AS paid_minor,
               p.refunded_minor, s.status AS shipment_status, s.carrier,
               o.created_at, CAST(o.created_at AS DATE) AS order_date, o.updated_at
        FROM cur_orders o
        LEFT JOIN lines l ON l.order_id = o.id
        LEFT JOIN cur_payments p ON p.order_id = o.id
        LEFT JOIN cur_shipments s ON s.order_id = o.id
        ORDER BY o.id
    """,
    "fact_order_charge": """
        SELECT c.order_id, o.user_id, o.status, o.status IN ({charged}) AS is_charged,
               c.currency, c.country, c.shipping_speed, c.goods_minor, c.discount_minor,
               c.shipping_minor, c.tax_minor, c.tax_mode, c.tax_rate_ppm,
               CASE WHEN c.tax_mode = 'exclusive' THEN c.tax_minor ELSE 0 END AS tax_added_minor,
               c.duty_minor, c.duty_minor > 0 AS paid_duty, c.total_minor,
               c.created_at, CAST(c.created_at AS DATE) AS order_date
        FROM cur_order_charges c JOIN cur_orders o ON o.id = c.order_id
        ORDER BY c.order_id
    """,
    "fact_promotion_redemption": """
        SELECT r.id AS redemption_id, r.order_id, r.promotion_id, r.user_id, r.code,
               r.code IS NULL AS is_automatic, r.discount_minor, r.status,
               o.status AS order_status, o.status IN ({charged}) AS is_charged, o.currency,
               r.created_at, CAST(r.created_at AS DATE) AS redemption_date, r.updated_at
        FROM cur_promotion_redemptions r JOIN cur_orders o ON o.id = r.order_id
        ORDER BY r.id
    """,
    "dim_promotion": """
        WITH used AS (
            SELECT promotion_id, COUNT(*) FILTER (WHERE is_charged) AS charged_orders,
                   COALESCE(SUM(discount_minor) FILTER (WHERE is_charged), 0)
                       AS discount_given_minor
            FROM fact_promotion_redemption GROUP BY promotion_id
        )
        SELECT p.id AS promotion_id, p.code, p.name, p.kind, p.code IS NULL AS is_automatic,
               p.percent_bp, p.amount_minor, p.currency, p.min_subtotal_minor, p.category_id,
               p.starts_at, p.ends_at, p.max_uses, p.max_uses_per_customer, p.uses AS uses_held,
               p.active, COALESCE(u.charged_orders, 0) AS charged_orders,
               COALESCE(u.discount_given_minor, 0) AS discount_given_minor,
               p.created_at, p.updated_at
        FROM cur_promotions p LEFT JOIN used u ON u.promotion_id = p.id
        ORDER BY p.id
    """,
    "fact_order_item": """
        SELECT i.order_id || ':' || CAST(i.product_id AS VARCHAR) AS order_item_key,
               i.order_id, i.product_id, o.user_id, p.category_id, o.status,
               o.status IN ({charged}) AS is_charged, o.currency, i.title, i.quantity,
               i.unit_price_minor, i.line_total_minor,
               o.created_at AS order_created_at, CAST(o.created_at AS DATE) AS order_date
        FROM cur_order_items i
        JOIN cur_orders o ON o.id = i.order_id
        LEFT JOIN cur_products p ON p.id = i.product_id
        ORDER BY i.order_id, i.product_id
    """,
    "dim_user": """
        WITH o AS (
            SELECT user_id, MIN(created_at) AS first_order_at, MAX(created_at) AS last_order_at,
                   COUNT(*) FILTER (WHERE is_charged) AS orders,
                   COALESCE(SUM(total_minor) FILTER (WHERE is_charged), 0) AS lifetime_value_minor
            FROM fact_order GROUP BY user_id
        )
        SELECT u.id AS user_id, u.role, u.is_active, u.created_at, u.updated_at,
               CAST(date_trunc('month', u.created_at) AS DATE) AS cohort_month,
               o.first_order_at, o.last_order_at, COALESCE(o.orders, 0) AS orders,
               COALESCE(o.lifetime_value_minor, 0) AS lifetime_value_minor
        FROM cur_users u LEFT JOIN o ON o.user_id = u.id
        ORDER BY u.id
    """,
    "fact_event": """
        SELECT e.event_id, e.type AS event_type, e.source, e.user_id, e.session_id,
               COALESCE(e.user_id, CAST(sl.user_id AS VARCHAR)) AS resolved_user_id,
               e.product_id, e.category_id, e.order_id, e.query, e.position, e.search_id,
               e.rec_id, e.client_ts, e.server_ts, CAST(e.server_ts AS DATE) AS event_date,
               e.request_id, e.props
        FROM cur_events e LEFT JOIN cur_session_links sl ON sl.session_id = e.session_id
        ORDER BY e.server_ts, e.event_id
    """,
    "fact_search": """
        WITH s AS (
            SELECT COALESCE(search_id, event_id) AS search_id, server_ts AS ts, resolved_user_id,
                   session_id, query, props,
                   row_number() OVER (PARTITION BY COALESCE(search_id, event_id)
                                      ORDER BY server_ts, event_id) AS rn
            FROM fact_event WHERE event_type = 'search'
        ), shown AS (
            SELECT *, list_filter(
                       list_transform(
                           CASE WHEN json_type(props, '$.results') = 'ARRAY'
                                THEN json_extract_string(props, '$.results[*]')
                                WHEN json_extract_string(props, '$.results') IS NOT NULL
                                THEN string_split(json_extract_string(props, '$.results'), ',')
                                ELSE []::VARCHAR[] END,
                           lambda x: trim(x)),
                       lambda x: x <> '') AS results,
                   TRY_CAST(json_extract_string(props, '$.total') AS BIGINT) AS total_results
            FROM s WHERE rn = 1
        ), c AS (
            SELECT search_id, COUNT(*) AS clicks,
                   list(position ORDER BY server_ts, event_id) AS click_positions,
                   list(product_id ORDER BY server_ts, event_id) AS clicked_product_ids,
                   MIN(position) AS first_click_position
            FROM fact_event WHERE event_type = 'search_click' AND search_id IS NOT NULL
            GROUP BY search_id
        )
        SELECT shown.search_id, shown.ts, CAST(shown.ts AS DATE) AS search_date,
               shown.resolved_user_id AS user_id, shown.session_id, shown.query,
               lower(trim(shown.query)) AS query_norm, shown.results,
               len(shown.results) AS results_shown, shown.total_results,
               COALESCE(shown.total_results, len(shown.results)) = 0 AS is_zero_result,
               COALESCE(c.clicks, 0) AS clicks, COALESCE(c.click_positions, []) AS click_positions,
               COALESCE(c.clicked_product_ids, []) AS clicked_product_ids,
               c.first_click_position
        FROM shown LEFT JOIN c ON c.search_id = shown.search_id
        ORDER BY shown.ts, shown.search_id
    """,
    "search_impressions": """
        WITH shown AS (
            SELECT search_id, query, ts, user_id, session_id,
                   UNNEST(results) AS product_id,
                   UNNEST(range(len(results))) AS position
            FROM fact_search
        ), clicked AS (
            SELECT DISTINCT search_id, product_id FROM fact_event
            WHERE event_type = 'search_click' AND search_id IS NOT NULL
        ), carted AS (
            SELECT search_id, session_id, resolved_user_id, product_id, server_ts
            FROM fact_event WHERE event_type IN ('add_to_cart', 'cart_add')
        )
        SELECT s.search_id, s.query, s.ts, s.product_id, CAST(s.position AS INTEGER) AS position,
               k.search_id IS NOT NULL AS clicked,
               EXISTS (
                   SELECT 1 FROM carted a
                   WHERE a.product_id = s.product_id
                     AND (a.search_id = s.search_id
                          OR ((a.session_id = s.session_id OR a.resolved_user_id = s.user_id)
                              AND a.server_ts BETWEEN s.ts
                                  AND s.ts + INTERVAL {cart_window} MINUTE))
               ) AS added_to_cart,
               EXISTS (
                   SELECT 1 FROM fact_order_item i
                   WHERE CAST(i.product_id AS VARCHAR) = s.product_id
                     AND CAST(i.user_id AS VARCHAR) = s.user_id
                     AND i.order_created_at BETWEEN s.ts AND s.ts + INTERVAL {buy_window} DAY
               ) AS purchased
        FROM shown s LEFT JOIN clicked k
          ON k.search_id = s.search_id AND k.product_id = s.product_id
        ORDER BY s.ts, s.search_id, position
    """,
    "fact_session": """
        WITH e AS (
            SELECT *, COALESCE(resolved_user_id, 'anon:' || session_id) AS actor
            FROM fact_event
            WHERE (source = 'client'
                   OR event_type IN ('order_placed', 'cart_add', 'cart_remove', 'user_login'))
              AND COALESCE(resolved_user_id, session_id) IS NOT NULL
        ), gaps AS (
            SELECT *, CASE WHEN lag(server_ts) OVER w IS NULL
                             OR server_ts - lag(server_ts) OVER w > INTERVAL {gap} MINUTE
                           THEN 1 ELSE 0 END AS starts
            FROM e WINDOW w AS (PARTITION BY actor ORDER BY server_ts, event_id)
        ), numbered AS (
            SELECT *, SUM(starts) OVER (PARTITION BY actor ORDER BY server_ts, event_id
                                        ROWS UNBOUNDED PRECEDING) AS session_no
            FROM gaps
        ), s AS (
            SELECT actor || '#' || CAST(session_no AS VARCHAR) AS session_key, actor,
                   any_value(resolved_user_id) AS user_id, min(session_id) AS session_id,
                   MIN(server_ts) AS started_at, MAX(server_ts) AS ended_at, COUNT(*) AS events,
                   arg_min(event_type, server_ts) AS landing_event_type,
                   COUNT(*) FILTER (WHERE event_type = 'page_view') AS page_views,
                   COUNT(*) FILTER (WHERE event_type = 'product_view') AS product_views,
                   COUNT(*) FILTER (WHERE event_type = 'search') AS searches,
                   COUNT(*) FILTER (WHERE event_type IN ('search_click', 'rec_click'))
                       AS result_clicks,
                   COUNT(*) FILTER (WHERE event_type IN ('add_to_cart', 'cart_add'))
                       AS add_to_carts,
                   COUNT(*) FILTER (WHERE event_type = 'checkout_start') AS checkout_starts,
                   COUNT(*) FILTER (WHERE event_type = 'order_placed') AS orders_placed
            FROM numbered GROUP BY actor, session_no
        )
        SELECT s.session_key, s.actor, s.user_id, s.session_id, s.started_at, s.ended_at,
               CAST(date_diff('second', s.started_at, s.ended_at) AS BIGINT) AS duration_seconds,
               CAST(s.started_at AS DATE) AS session_date, s.events, s.landing_event_type,
               s.page_views, s.product_views, s.searches, s.result_clicks, s.add_to_carts,
               s.checkout_starts, s.orders_placed,
               s.product_views > 0 AS has_view, s.add_to_carts > 0 AS has_cart,
               s.checkout_starts > 0 AS has_checkout,
               s.orders_placed > 0 OR EXISTS (
                   SELECT 1 FROM fact_order o
                   WHERE CAST(o.user_id AS VARCHAR) = s.user_id
                     AND o.created_at BETWEEN s.started_at
                         AND s.ended_at + INTERVAL {gap} MINUTE
               ) AS has_order
        FROM s ORDER BY s.started_at, s.session_key
    """,
    "fact_rec_impression": """
        WITH imp AS (
            SELECT *, row_number() OVER (PARTITION BY rec_id, product_id
                                         ORDER BY server_ts, event_id) AS rn
            FROM fact_event WHERE event_type = 'rec_impression'
        ), clk AS (
            SELECT rec_id, product_id, MIN(server_ts) AS clicked_at, COUNT(*) AS clicks
            FROM fact_event WHERE event_type = 'rec_click' GROUP BY rec_id, product_id
        )
        SELECT i.rec_id, i.product_id, i.position,
               rec_served_version(i.rec_id) AS model_version,
               json_extract_string(i.props, '$.model_version') AS claimed_model_version,
               json_extract_string(i.props, '$.model') AS model,
               COALESCE(rec_served_surface(i.rec_id),
                        json_extract_string(i.props, '$.surface')) AS surface,
               i.resolved_user_id AS user_id, i.session_id, i.server_ts AS ts,
               CAST(i.server_ts AS DATE) AS impression_date,
               c.rec_id IS NOT NULL AS clicked, c.clicked_at, COALESCE(c.clicks, 0) AS clicks
        FROM imp i LEFT JOIN clk c ON c.rec_id = i.rec_id AND c.product_id = i.product_id
        WHERE i.rn = 1
        ORDER BY i.server_ts, i.rec_id, i.position
    """,
    "daily_sales": """
        SELECT o.order_date AS date, o.currency,
               COUNT(*) AS orders,
               COUNT(*) FILTER (WHERE o.is_charged) AS charged_orders,
               COUNT(*) FILTER (WHERE o.status IN ('cancelled', 'refunded', 'payment_failed'))
                   AS lost_orders,
               COUNT(DISTINCT o.user_id) FILTER (WHERE o.is_charged) AS customers,
               COALESCE(SUM(o.units) FILTER (WHERE o.is_charged), 0) AS units,
               COALESCE(SUM(o.total_minor) FILTER (WHERE o.is_charged), 0) AS revenue_minor,
               COALESCE(SUM(o.shipping_minor) FILTER (WHERE o.is_charged), 0) AS shipping_minor,
               COALESCE(SUM(o.total_minor), 0) AS booked_minor,
               CAST(COALESCE(SUM(o.total_minor) FILTER (WHERE o.is_charged), 0)
                    / NULLIF(COUNT(*) FILTER (WHERE o.is_charged), 0) AS BIGINT)
                   AS avg_order_value_minor
        FROM fact_order o GROUP BY o.order_date, o.currency
        ORDER BY date, o.currency
    """,
    "daily_funnel": """
        SELECT session_date AS date, COUNT(*) AS visits,
               COUNT(*) FILTER (WHERE has_view) AS view_sessions,
               COUNT(*) FILTER (WHERE has_cart) AS cart_sessions,
               COUNT(*) FILTER (WHERE has_checkout) AS checkout_sessions,
               COUNT(*) FILTER (WHERE has_order) AS order_sessions,
               COUNT(*) FILTER (WHERE has_view) / COUNT(*) AS view_rate,
               COUNT(*) FILTER (WHERE has_cart) / NULLIF(COUNT(*) FILTER (WHERE has_view), 0)
                   AS cart_rate,
               COUNT(*) FILTER (WHERE has_order) / NULLIF(COUNT(*) FILTER (WHERE has_cart), 0)
                   AS order_rate,
               COUNT(*) FILTER (WHERE has_order) / COUNT(*) AS conversion_rate
        FROM fact_session GROUP BY session_date ORDER BY date
    """,
    "dim_seller": """
        WITH led AS (
            SELECT seller_id,
                   SUM(amount_minor) FILTER (WHERE kind = 'sale') AS sales_minor,
                   SUM(amount_minor) FILTER (WHERE kind IN ('commission', 'commission_refund'))
                       AS commission_minor,
                   SUM(amount_minor) FILTER (WHERE kind = 'refund') AS refunds_minor,
                   SUM(amount_minor) FILTER (WHERE kind IN ('dispute_hold', 'dispute_release'))
                       AS disputes_minor,
                   SUM(amount_minor) FILTER (WHERE kind = 'payout') AS payouts_minor,
                   SUM(amount_minor) AS owed_minor
            FROM cur_seller_ledger GROUP BY seller_id
        ), prods AS (
            SELECT seller_id, COUNT(*) AS products FROM cur_seller_products GROUP BY seller_id
        )
        SELECT s.id AS seller_id, s.user_id, s.display_name, s.commission_bps, s.status,
               COALESCE(p.products, 0) AS products,
               COALESCE(l.sales_minor, 0) AS sales_minor,
               COALESCE(l.commission_minor, 0) AS commission_minor,
               COALESCE(l.refunds_minor, 0) AS refunds_minor,
               COALESCE(l.disputes_minor, 0) AS disputes_minor,
               COALESCE(l.payouts_minor, 0) AS payouts_minor,
               COALESCE(l.owed_minor, 0) AS owed_minor,
               s.created_at, s.updated_at
        FROM cur_sellers s
        LEFT JOIN led l ON l.seller_id = s.id
        LEFT JOIN prods p ON p.seller_id = s.id
        ORDER BY s.id
    """,
    "fact_seller_ledger": """
        SELECT id AS entry_id, seller_id, order_id, kind, amount_minor, currency, created_at,
               CAST(created_at AS DATE) AS entry_date
        FROM cur_seller_ledger ORDER BY id
    """,
    "fact_seller_order": """
        WITH lines AS (
            SELECT i.order_id, sp.seller_id, COUNT(*) AS lines, SUM(i.quantity) AS units,
                   SUM(i.line_total_minor) AS lines_total_minor
            FROM cur_order_items i JOIN cur_seller_products sp ON sp.product_id = i.product_id
            GROUP BY i.order_id, sp.seller_id
        ), led AS (
            SELECT order_id, seller_id,
                   SUM(amount_minor) FILTER (WHERE kind = 'sale') AS sale_minor,
                   SUM(amount_minor) FILTER (WHERE kind = 'commission') AS commission_minor,
                   SUM(amount_minor) FILTER (WHERE kind = 'refund') AS refund_minor,
                   SUM(amount_minor) FILTER (WHERE kind = 'commission_refund')
                       AS commission_refund_minor,
                   SUM(amount_minor) FILTER (WHERE kind IN ('dispute_hold', 'dispute_release'))
                       AS dispute_minor,
                   SUM(amount_minor) AS net_minor
            FROM cur_seller_ledger WHERE order_id IS NOT NULL GROUP BY order_id, seller_id
        )
        SELECT l.order_id || ':' || CAST(l.seller_id AS VARCHAR) AS seller_order_key,
               l.order_id, l.seller_id, o.user_id, o.status AS order_status,
               o.status IN ({charged}) AS is_charged, o.currency, l.lines, l.units,
               l.lines_total_minor, s.commission_bps,
               CAST((l.lines_total_minor * s.commission_bps + 5000) // 10000 AS BIGINT)
                   AS expected_commission_minor,
               d.sale_minor IS NOT NULL AS is_booked,
               COALESCE(d.sale_minor, 0) AS sale_minor,
               COALESCE(d.commission_minor, 0) AS commission_minor,
               COALESCE(d.refund_minor, 0) AS refund_minor,
               COALESCE(d.commission_refund_minor, 0) AS commission_refund_minor,
               COALESCE(d.dispute_minor, 0) AS dispute_minor,
               COALESCE(d.net_minor, 0) AS net_minor,
               sh.status AS parcel_status, sh.carrier AS parcel_carrier,
               o.created_at AS order_created_at, CAST(o.created_at AS DATE) AS order_date
        FROM lines l
        JOIN cur_orders o ON o.id = l.order_id
        JOIN cur_sellers s ON s.id = l.seller_id
        LEFT JOIN led d ON d.order_id = l.order_id AND d.seller_id = l.seller_id
        LEFT JOIN cur_seller_shipments sh
            ON sh.order_id = l.order_id AND sh.seller_id = l.seller_id
        ORDER BY l.order_id, l.seller_id
    """,
    "fact_membership": """
        WITH ch AS (
            SELECT membership_id,
                   COUNT(*) FILTER (WHERE status = 'succeeded') AS charges_succeeded,
                   COUNT(*) FILTER (WHERE status = 'failed') AS charges_failed,
                   COALESCE(SUM(amount_minor) FILTER (WHERE status = 'succeeded'), 0)
                       AS paid_minor,
                   MAX(created_at) FILTER (WHERE status = 'succeeded') AS last_paid_at
            FROM cur_membership_charges GROUP BY membership_id
        )
        SELECT m.id AS membership_id, m.user_id, m.plan, m.status,
               m.status IN ('active', 'past_due') AS is_live, m.price_minor, m.currency,
               m.period_no, m.current_period_start, m.current_period_end,
               m.cancel_at_period_end, m.renewal_failures, m.grace_until,
               NULLIF(m.ended_reason, '') AS ended_reason,
               COALESCE(c.charges_succeeded, 0) AS charges_succeeded,
               COALESCE(c.charges_failed, 0) AS charges_failed,
               COALESCE(c.paid_minor, 0) AS paid_minor, c.last_paid_at,
               m.created_at, m.updated_at
        FROM cur_memberships m LEFT JOIN ch c ON c.membership_id = m.id
        ORDER BY m.id
    """,
    "fact_return": """
        WITH l AS (
            SELECT return_id, COUNT(*) AS lines, SUM(quantity) AS units,
                   COALESCE(SUM(quantity) FILTER (WHERE disposition = 'restock'), 0)
                       AS restocked_units,
                   COALESCE(SUM(quantity) FILTER (WHERE disposition = 'write_off'), 0)
                       AS written_off_units
            FROM cur_return_lines GROUP BY return_id
        )
        SELECT r.id AS return_id, r.order_id, r.user_id, r.status, r.reason, r.currency,
               r.amount_minor, r.refunded_minor, COALESCE(l.lines, 0) AS lines,
               COALESCE(l.units, 0) AS units, COALESCE(l.restocked_units, 0) AS restocked_units,
               COALESCE(l.written_off_units, 0) AS written_off_units,
               r.created_at, CAST(r.created_at AS DATE) AS return_date, r.updated_at
        FROM cur_returns r LEFT JOIN l ON l.return_id = r.id
        ORDER BY r.id
    """,
    "fact_dispute": """
        SELECT id AS dispute_id, order_id, status, reason, amount_minor, currency,
               CASE WHEN status IN ('needs_response', 'under_review') THEN amount_minor ELSE 0
               END AS frozen_minor,
               CASE WHEN status = 'lost' THEN amount_minor ELSE 0 END AS lost_minor,
               created_at, CAST(created_at AS DATE) AS dispute_date, updated_at, closed_at
        FROM cur_disputes ORDER BY id
    """,
    "interactions": """
        SELECT COALESCE(resolved_user_id, 'anon:' || session_id) AS user_id, product_id,
               CASE WHEN event_type = 'cart_add' THEN 'add_to_cart' ELSE event_type END
                   AS event_type,
               server_ts AS ts, resolved_user_id IS NULL AS is_anonymous
        FROM fact_event
        WHERE event_type IN ('product_view', 'search_click', 'rec_click', 'add_to_cart',
                             'cart_add', 'wishlist_add')
          AND product_id IS NOT NULL AND COALESCE(resolved_user_id, session_id) IS NOT NULL
        UNION ALL
        SELECT CAST(user_id AS VARCHAR), CAST(product_id AS VARCHAR), 'purchase',
               order_created_at, false
        FROM fact_order_item WHERE is_charged
        ORDER BY ts, user_id, product_id, event_type
    """,
}

#: Build order (each table only reads tables before it) and each table's dependencies.
TABLES: Final[dict[str, tuple[str, ...]]] = {
    "dim_category": (),
    "dim_product": (),
    "fact_order": (),
    "fact_order_item": (),
    "fact_order_charge": ("fact_order",),
    "fact_promotion_redemption": ("fact_order",),
    "dim_promotion": ("fact_promotion_redemption",),
    "dim_user": ("fact_order",),
    "fact_event": (),
    "fact_search": ("fact_event",),
    "fact_session": ("fact_event", "fact_order"),
    "search_impressions": ("fact_search", "fact_event", "fact_order_item"),
    "fact_rec_impression": ("fact_event",),
    "daily_sales": ("fact_order",),
    "daily_funnel": ("fact_session",),
    "interactions": ("fact_event", "fact_order_item"),
    "dim_seller": (),
    "fact_seller_ledger": (),
    "fact_seller_order": (),
    "fact_membership": (),
    "fact_return": (),
    "fact_dispute": (),
}


def _render(name: str) -> str:
    return _SQL[name].format(
        charged=_CHARGED_SQL,
        gap=SESSION_GAP_MINUTES,
        cart_window=SEARCH_CART_WINDOW_MINUTES,
        buy_window=SEARCH_PURCHASE_WINDOW_DAYS,
    )


@dataclass(frozen=True)
class TableStats:
    """Row count and a preview, for materialization metadata."""

    name: str
    rows: int
    columns: list[str]


def register_rec_id_functions(
    con: duckdb.DuckDBPyConnection, rec_ids: RecIdVerifier | None
) -> None:
    """SQL functions ``rec_served_version(rec_id)`` / ``rec_served_surface(rec_id)``.

    They return what a *verified* signed rec id names (``features.rec_ids``), else NULL; with
    no verifier (the shop's secret is unknown) every id is NULL: an impression is credited to
    a model version only when the shop's own signature says so. ``fact_rec_impression`` keeps
    the client's ``props.model_version`` as ``claimed_model_version``, for the record.
    """

    def version(rec_id: str | None) -> str | None:
        return None if rec_ids is None else rec_ids.version(rec_id)

    def surface(rec_id: str | None) -> str | None:
        return None if rec_ids is None else rec_ids.surface(rec_id)

    for name, function in (("rec_served_version", version), ("rec_served_surface", surface)):
        with contextlib.suppress(duckdb.InvalidInputException):  # not registered here yet
            con.remove_function(name)
        con.create_function(
            name, function, ["VARCHAR"], "VARCHAR", null_handling="special", side_effects=False
        )


def build_table(
    con: duckdb.DuckDBPyConnection, name: str, rec_ids: RecIdVerifier | None = None
) -> int:
    """(Re)build one warehouse table in a transaction; returns its row count.

    Readers never see a half-built table: ``CREATE OR REPLACE`` inside a transaction swaps it.
    The caller must have run :func:`stage_raw` on this connection. ``rec_ids`` verifies the
    signed rec ids of ``fact_rec_impression`` (see :func:`register_rec_id_functions`).
    """
    if name == "fact_rec_impression":
        register_rec_id_functions(con, rec_ids)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"CREATE OR REPLACE TABLE {name} AS {_render(name)}")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return int(con.execute(f"SELECT COUNT(*) FROM {name}").fetchall()[0][0])  # type: ignore[index]


def build_warehouse(
    lake_dir: Path | str,
    warehouse_path: Path | str,
    tables: Iterable[str] | None = None,
    rec_ids: RecIdVerifier | None = None,
) -> dict[str, int]:
    """Build tables in dependency order (all by default); returns row counts by table."""
    wanted = list(TABLES) if tables is None else [t for t in TABLES if t in set(tables)]
    con = connect(warehouse_path)
    try:
        stage_raw(con, lake_dir)
        return {name: build_table(con, name, rec_ids) for name in wanted}
    finally:
        con.close()


def table_stats(con: duckdb.DuckDBPyConnection, name: str) -> TableStats:
    """Row count and column names of a built table."""
    rows = int(con.execute(f"SELECT COUNT(*) FROM {name}").fetchall()[0][0])  # type: ignore[index]
    columns = [r[0] for r in con.execute(f"DESCRIBE {name}").fetchall()]
    return TableStats(name, rows, columns)


def preview_markdown(con: duckdb.DuckDBPyConnection, name: str, limit: int = 5) -> str:
    """The first rows as a Markdown table, for the Dagster UI (no pandas/tabulate needed)."""
    cursor = con.execute(f"SELECT * FROM {name} LIMIT {int(limit)}")
    headers = [d[0] for d in cursor.description]
    rows = cursor.fetchall()

    def cell(value: Any) -> str:
        text = "" if value is None else str(value)
        text = text.replace("|", "\\|").replace("\n", " ")
        return text if len(text) <= 40 else text[:37] + "..."

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def raw_partition_range(lake_dir: Path | str, table: str) -> tuple[str | None, str | None, int]:
    """First and last materialized partition of a raw table and how many there are."""
    days = sorted(
        p.parent.name.removeprefix("date=")
        for p in (Path(lake_dir) / "raw" / table).glob("date=*/part-0.parquet")
    )
    return (days[0], days[-1], len(days)) if days else (None, None, 0)


# --------------------------------------------------------------------------------------------
# Check queries (the assertions the pipelines' asset checks make)
# --------------------------------------------------------------------------------------------

#: Natural key of each table, as a SQL expression.
KEYS: Final[dict[str, str]] = {
    "dim_category": "category_id",
    "dim_product": "product_id",
    "dim_user": "user_id",
    "fact_order": "order_id",
    "fact_order_item": "order_item_key",
    "fact_order_charge": "order_id",
    "fact_promotion_redemption": "redemption_id",
    "dim_promotion": "promotion_id",
    "fact_event": "event_id",
    "fact_search": "search_id",
    "fact_session": "session_key",
    "fact_rec_impression": "rec_id || ':' || product_id",
    "search_impressions": "search_id || ':' || CAST(position AS VARCHAR)",
    "daily_sales": "CAST(date AS VARCHAR) || currency",
    "daily_funnel": "date",
    "dim_seller": "seller_id",
    "fact_seller_ledger": "entry_id",
    "fact_seller_order": "seller_order_key",
    "fact_membership": "membership_id",
    "fact_return": "return_id",
    "fact_dispute": "dispute_id",
}

#: Foreign keys that must resolve: (table, column, referenced table, referenced column).
#: ``fact_order.user_id`` is checked on ``dim_user``'s side, which is built after the orders.
FOREIGN_KEYS: Final = (
    ("dim_product", "category_id", "dim_category", "category_id"),
    ("fact_order", "user_id", "dim_user", "user_id"),
    ("fact_order_item", "order_id", "fact_order", "order_id"),
    ("fact_order_item", "product_id", "dim_product", "product_id"),
    ("fact_seller_ledger", "seller_id", "dim_seller", "seller_id"),
    ("fact_seller_order", "order_id", "fact_order", "order_id"),
    ("fact_return", "order_id", "fact_order", "order_id"),
    ("fact_dispute", "order_id", "fact_order", "order_id"),
    ("fact_order_charge", "order_id", "fact_order", "order_id"),
    ("fact_promotion_redemption", "order_id", "fact_order", "order_id"),
)


def charge_mismatches(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """Priced orders whose parts do not add up to their total, and whose total differs from
    the order's (what was charged): both must be 0. The shop computes the parts once and
    charges their sum, so either count means a pricing or extraction bug."""
    parts = con.execute(
        "SELECT COUNT(*) FROM fact_order_charge WHERE goods_minor - discount_minor"
        " + shipping_minor + tax_added_minor + duty_minor <> total_minor"
    ).fetchone()
    totals = con.execute(
        "SELECT COUNT(*) FROM fact_order_charge c JOIN fact_order o USING (order_id)"
        " WHERE c.total_minor <> o.total_minor"
    ).fetchone()
    return int(parts[0]), int(totals[0])


def key_problems(con: duckdb.DuckDBPyConnection, table: str) -> tuple[int, int]:
    """(null keys, duplicated keys) of a table."""
    key = KEYS[table]
    nulls, dupes = con.execute(
        f"SELECT COUNT(*) FILTER (WHERE k IS NULL), COUNT(k) - COUNT(DISTINCT k) "
        f"FROM (SELECT {key} AS k FROM {table})"
    ).fetchall()[0]  # type: ignore[misc]
    return int(nulls), int(dupes)


def orphans(con: duckdb.DuckDBPyConnection, table: str, column: str, ref: str, ref_col: str) -> int:
    """Rows whose non-null foreign key has no match."""
    return int(
        con.execute(
            f"SELECT COUNT(*) FROM {table} t WHERE t.{column} IS NOT NULL AND NOT EXISTS "
            f"(SELECT 1 FROM {ref} r WHERE r.{ref_col} = t.{column})"
        ).fetchall()[0][0]  # type: ignore[index]
    )


def warehouse_totals(
    con: duckdb.DuckDBPyConnection, table: str, before: Any, by: str = "updated_at"
) -> tuple[int, int]:
    """Rows and money of ``fact_order`` or ``fact_order_item`` changed (or, with
    ``by="created_at"``, created) before ``before``.

    Mirrors ``features.lake.source_totals`` so a check compares like with like.
    """
    if by not in ("updated_at", "created_at"):
        raise ValueError(f"by must be updated_at or created_at, not {by!r}")
    if table == "fact_order":
        sql = f"SELECT COUNT(*), COALESCE(SUM(total_minor), 0) FROM fact_order WHERE {by} < ?"
    else:
        sql = (
            "SELECT COUNT(*), COALESCE(SUM(i.line_total_minor), 0) FROM fact_order_item i "
            f"JOIN fact_order o USING (order_id) WHERE o.{by} < ?"
        )
    count, total = con.execute(sql, [before]).fetchall()[0]  # type: ignore[misc]
    return int(count), int(total)


def ledger_totals(con: duckdb.DuckDBPyConnection, before: Any) -> tuple[int, int]:
    """Rows and SUM(amount_minor) of the sellers' ledger created before ``before`` (the
    warehouse side of ``features.lake.source_totals`` on ``seller_ledger``)."""
    count, total = con.execute(
        "SELECT COUNT(*), COALESCE(SUM(amount_minor), 0) FROM fact_seller_ledger "
        "WHERE created_at < ?",
        [before],
    ).fetchall()[0]  # type: ignore[misc]
    return int(count), int(total)


def payout_mismatches(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """(seller order key, what is wrong) for every booked seller order whose ledger does not
    follow from its lines: the sale must equal the seller's line totals, the commission minus
    ``round_half_up(sale × commission_bps / 10000)``, and a refund or a commission refund can
    never exceed what was booked."""
    rows = con.execute(
        """
        SELECT seller_order_key,
               CASE WHEN sale_minor <> lines_total_minor THEN 'sale'
                    WHEN -commission_minor <> expected_commission_minor THEN 'commission'
                    WHEN -refund_minor > sale_minor THEN 'refund'
                    WHEN commission_refund_minor > -commission_minor THEN 'commission_refund'
               END AS problem
        FROM fact_seller_order
        WHERE is_booked
        """
    ).fetchall()
    return [(key, problem) for key, problem in rows if problem is not None]


def latest_event_ts(con: duckdb.DuckDBPyConnection) -> Any:
    """Newest ``server_ts`` in ``fact_event`` (None when empty)."""
    return con.execute("SELECT MAX(server_ts) FROM fact_event").fetchall()[0][0]  # type: ignore[index]


# --------------------------------------------------------------------------------------------
# Reads for the model and search assets
# --------------------------------------------------------------------------------------------


def read_interactions(con: duckdb.DuckDBPyConnection, *, include_anonymous: bool = False) -> Any:
    """The ``interactions`` table as pandas, in the columns ``build_interactions`` expects."""
    where = "" if include_anonymous else "WHERE NOT is_anonymous"
    return con.execute(
        f"SELECT user_id, product_id, event_type, ts FROM interactions {where} "
        "ORDER BY ts, user_id, product_id, event_type"
    ).df()


def interactions_range(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """First and last interaction time and how many there are: the data a model learned from
    (written into its manifest, shown on the ops page)."""
    first, last, count = con.execute(
        "SELECT MIN(ts), MAX(ts), COUNT(*) FROM interactions WHERE NOT is_anonymous"
    ).fetchall()[0]  # type: ignore[misc]
    return {
        "first": first.isoformat() if first is not None else None,
        "last": last.isoformat() if last is not None else None,
        "interactions": int(count),
    }


def search_document_rows(con: duckdb.DuckDBPyConnection, as_of: Any = None) -> list[dict[str, Any]]:
    """Active products shaped for ``models.search.documents.ProductDocument.from_mapping``.

    Priors come from behaviour: popularity is units sold, ``ctr_prior`` the product's click rate
    in search results and ``conversion_prior`` its purchase rate after being shown. With
    ``as_of`` (a timestamp) all three count only what happened before it, which is what a ranker
    evaluated on later days may see (rating and stock are the current ones: the warehouse keeps
    no history of either).
    """
    before = "TRUE" if as_of is None else "ts < $as_of"
    sold = (
        "CAST(p.units_sold AS DOUBLE)" if as_of is None else "CAST(COALESCE(b.units, 0) AS DOUBLE)"
    )
    cursor = con.execute(
        f"""
        WITH s AS (
            SELECT product_id, AVG(CAST(clicked AS DOUBLE)) AS ctr,
                   AVG(CAST(purchased AS DOUBLE)) AS conv
            FROM search_impressions WHERE {before} GROUP BY product_id
        ), b AS (
            SELECT product_id, SUM(quantity) AS units FROM fact_order_item
            WHERE is_charged AND ($as_of IS NULL OR order_created_at < $as_of)
            GROUP BY product_id
        )
        SELECT CAST(p.product_id AS VARCHAR) AS product_id, p.title, p.brand,
               COALESCE(p.category_path, '') AS category_path, p.attributes, p.description,
               p.price_minor AS price, p.stock_on_hand > 0 AS in_stock, p.rating_avg AS rating,
               p.created_at, {sold} AS popularity,
               COALESCE(s.ctr, 0) AS ctr_prior, COALESCE(s.conv, 0) AS conversion_prior
        FROM dim_product p LEFT JOIN s ON s.product_id = CAST(p.product_id AS VARCHAR)
        LEFT JOIN b ON b.product_id = p.product_id
        WHERE p.status = 'active'
        ORDER BY p.product_id
        """,
        {"as_of": as_of},
    )
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    for row in rows:
        row["attributes"] = json.loads(row["attributes"]) if row["attributes"] else {}
    return rows
