"""Benchmark: raw → warehouse for 1,000,000 events and 100,000 orders.

Writes the source exactly as the shop would leave it (orders in a SQLite database created by
``serving.db.migrate.upgrade``, events as closed JSON Lines segments in the
``features.events`` format), then times the same functions the Dagster assets call: every raw
table's daily partitions, the events' daily partitions, and the whole DuckDB warehouse build.
Target: under 60 s on 2 cores. Prints a table and writes ``bench/results/pipelines.json``.

Usage: ``python bench/bench_pipelines.py [--events N] [--orders N] [--days N] [--keep DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import sqlite3
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from features import lake, warehouse  # noqa: E402
from features.events import format_ts  # noqa: E402
from serving.db import migrate  # noqa: E402

SQL_TS = "%Y-%m-%d %H:%M:%S.%f"
EVENT_MIX = (
    ("product_view", 0.45),
    ("page_view", 0.14),
    ("rec_impression", 0.14),
    ("search", 0.08),
    ("search_click", 0.05),
    ("add_to_cart", 0.06),
    ("category_view", 0.03),
    ("rec_click", 0.02),
    ("checkout_start", 0.02),
    ("remove_from_cart", 0.01),
)


def build_shop(db_path: Path, orders: int, days: int, start: datetime, rng: random.Random) -> dict:
    """Catalog, users and orders with lines, payments and shipments, via executemany."""
    migrate.upgrade(f"sqlite:///{db_path}")
    con = sqlite3.connect(db_path)
    ts0 = start.strftime(SQL_TS)
    n_products, n_users = 5_000, 30_000
    cats = [(1, None, "root", "Root", "root", 0, ts0, ts0)]
    cats += [(i, 1, f"c{i}", f"Cat {i}", f"root/c{i}", 1, ts0, ts0) for i in range(2, 41)]
    con.executemany("INSERT INTO categories VALUES (?,?,?,?,?,?,?,?)", cats)
    prices = [rng.randint(199, 49_999) for _ in range(n_products)]
    con.executemany(
        "INSERT INTO products (id, sku, title, description, brand, category_id, price_minor,"
        " currency, attributes, image_urls, status, rating_avg, rating_count, created_at,"
        " updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [
            (
                i + 1,
                f"SKU{i}",
                f"Product {i}",
                "",
                f"Brand{i % 50}",
                2 + i % 39,
                prices[i],
                "EUR",
                '{"color": "red"}',
                "[]",
                "active",
                4.0,
                3,
                ts0,
                ts0,
            )
            for i in range(n_products)
        ],
    )
    con.executemany(
        "INSERT INTO users (id, email, password_hash, full_name, role, is_active, created_at,"
        " updated_at) VALUES (?,?,?,?,?,?,?,?)",
        [(u, f"u{u}@example.com", "x", "", "customer", 1, ts0, ts0) for u in range(1, n_users + 1)],
    )
    order_rows, line_rows, pay_rows, ship_rows = [], [], [], []
    span = days * 86_400
    total = lines_total = 0
    for n in range(orders):
        oid = f"ord_{n:08d}"
        stamp = (start + timedelta(seconds=rng.randrange(span))).strftime(SQL_TS)
        chosen = rng.sample(range(n_products), rng.randint(1, 4))
        subtotal = 0
        for pid in chosen:
            qty = rng.randint(1, 3)
            line = prices[pid] * qty
            subtotal += line
            line_rows.append((oid, pid + 1, f"Product {pid}", qty, prices[pid], line))
        status = rng.choices(("delivered", "paid", "shipped", "cancelled"), (6, 2, 1, 1))[0]
        order_rows.append(
            (
                oid,
                rng.randint(1, n_users),
                status,
                "EUR",
                subtotal,
                499,
                subtotal + 499,
                "{}",
                "pm",
                1,
                stamp,
                stamp,
                stamp,
            )
        )
        pay_rows.append(
            (
                oid,
                "sim",
                f"k{n}",
                None,
                "succeeded",
                subtotal + 499,
                0,
                "EUR",
                "visa",
                "4242",
                None,
                stamp,
                stamp,
            )
        )
        if status in ("delivered", "shipped"):
            ship_rows.append((oid, "simpost", f"T{n}", status, stamp, stamp))
        total += subtotal + 499
        lines_total += sum(r[5] for r in line_rows[-len(chosen) :])
    con.executemany(
        "INSERT INTO orders (id, user_id, status, currency, subtotal_minor, shipping_minor,"
        " total_minor, shipping_address, payment_method, from_cart, reserved_until, created_at,"
        " updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        order_rows,
    )
    con.executemany("INSERT INTO order_lines VALUES (?,?,?,?,?,?)", line_rows)
    con.executemany(
        "INSERT INTO payments (order_id, provider, idempotency_key, intent_id, status,"
        " amount_minor, refunded_minor, currency, brand, last4, decline_code, created_at,"
        " updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        pay_rows,
    )
    con.executemany(
        "INSERT INTO shipments (order_id, carrier, tracking_number, status, created_at,"
        " updated_at) VALUES (?,?,?,?,?,?)",
        ship_rows,
    )
    con.commit()
    con.close()
    return {
        "orders": orders,
        "lines": len(line_rows),
        "total_minor": total,
        "lines_total_minor": lines_total,
        "products": n_products,
        "users": n_users,
    }


def write_events(
    events_dir: Path, count: int, days: int, start: datetime, rng: random.Random
) -> int:
    """``count`` events over ``days``, 8 closed segments per day, mtime = last event."""
    events_dir.mkdir(parents=True, exist_ok=True)
    types = [t for t, _ in EVENT_MIX]
    weights = [w for _, w in EVENT_MIX]
    per_segment = count // (days * 8)
    written = 0
    for seg in range(days * 8):
        seg_start = start + timedelta(hours=3 * seg)
        kinds = rng.choices(types, weights, k=per_segment)
        offsets = sorted(rng.randrange(3 * 3600 * 1000) for _ in range(per_segment))
        lines = []
        for i, (kind, off) in enumerate(zip(kinds, offsets, strict=True)):
            moment = seg_start + timedelta(milliseconds=off)
            user = rng.randint(1, 30_000)
            record = {
                "event_id": str(uuid.UUID(int=rng.getrandbits(128))),
                "type": kind,
                "source": "client",
                "user_id": str(user) if user % 5 else None,
                "session_id": f"s{user}-{seg // 2}",
                "product_id": str(rng.randint(1, 5_000)),
                "client_ts": format_ts(moment),
                "server_ts": format_ts(moment),
            }
            if kind == "search":
                record["search_id"] = f"q{seg}-{i}"
                record["query"] = f"term {rng.randint(1, 500)}"
                shown = [str(rng.randint(1, 5_000)) for _ in range(10)]
                record["props"] = {"results": ",".join(shown), "total": 10}
                record["product_id"] = None
            elif kind == "search_click":
                record["search_id"] = f"q{seg}-{max(0, i - 3)}"
                record["position"] = rng.randint(0, 9)
            elif kind in ("rec_impression", "rec_click"):
                record["rec_id"] = f"r{seg}-{i // 10}"
                record["position"] = i % 10
                record["props"] = {"model_version": f"v{seg % 3}"}
            lines.append(orjson.dumps(record))
        stem = f"{seg_start:%Y%m%dT%H%M%SZ}-bench-1-beef-{seg:06d}"
        path = events_dir / f"{stem}.jsonl"
        path.write_bytes(b"\n".join(lines) + b"\n")
        last = (seg_start + timedelta(milliseconds=offsets[-1])).timestamp()
        os.utime(path, (last, last))
        written += len(lines)
    return written


def _extract_day(base: str, day: str) -> int:
    """One partition of every table and of the events, as one Dagster partition run does."""
    from sqlalchemy import create_engine

    root = Path(base)
    engine = create_engine(f"sqlite:///{root / 'shop.db'}")
    try:
        for spec in lake.SOURCE_TABLES.values():
            lake.extract_table(engine, root / "lake", spec, day)
    finally:
        engine.dispose()
    return lake.extract_events(root / "events", root / "lake", day).rows


def _cpu_seconds() -> float:
    """User + system CPU of this process and its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--keep", type=Path, help="build here and keep the result")
    parser.add_argument(
        "--workers", type=int, default=2, help="partitions extracted at once (a 2-run backfill)"
    )
    args = parser.parse_args()
    rng = random.Random(7)
    base = args.keep or Path(tempfile.mkdtemp(prefix="bench-pipelines-"))
    base.mkdir(parents=True, exist_ok=True)
    start = (datetime.now(UTC) - timedelta(days=args.days + 1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    t = time.perf_counter()
    source = build_shop(base / "shop.db", args.orders, args.days, start, rng)
    written = write_events(base / "events", args.events, args.days, start, rng)
    generate_s = time.perf_counter() - t
    day_keys = [(start + timedelta(days=d)).date().isoformat() for d in range(args.days)]

    from concurrent.futures import ProcessPoolExecutor

    cpu0, t = _cpu_seconds(), time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        events_rows = sum(pool.map(_extract_day, [str(base)] * len(day_keys), day_keys))
    raw_s, raw_cpu = time.perf_counter() - t, _cpu_seconds() - cpu0
    cpu0, t = _cpu_seconds(), time.perf_counter()
    counts = warehouse.build_warehouse(base / "lake", base / "warehouse.duckdb")
    warehouse_s, warehouse_cpu = time.perf_counter() - t, _cpu_seconds() - cpu0

    con = warehouse.connect(base / "warehouse.duckdb", read_only=True)
    orders_ok = con.execute("SELECT COUNT(*), SUM(total_minor) FROM fact_order").fetchall()[0] == (
        source["orders"],
        source["total_minor"],
    )
    items_ok = con.execute(
        "SELECT COUNT(*), SUM(line_total_minor) FROM fact_order_item"
    ).fetchall()[0] == (source["lines"], source["lines_total_minor"])
    con.close()
    total_s = raw_s + warehouse_s
    result = {
        "benchmark": "pipelines raw→warehouse",
        "events": written,
        "events_in_warehouse": counts["fact_event"],
        "orders": source["orders"],
        "order_lines": source["lines"],
        "days": args.days,
        "generate_seconds": round(generate_s, 2),
        "workers": args.workers,
        "raw_seconds": round(raw_s, 2),
        "raw_cpu_seconds": round(raw_cpu, 2),
        "warehouse_seconds": round(warehouse_s, 2),
        "warehouse_cpu_seconds": round(warehouse_cpu, 2),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "raw_to_warehouse_seconds": round(total_s, 2),
        "target_seconds": 60,
        "passed": total_s < 60 and orders_ok and items_ok and events_rows == written,
        "reconciled": orders_ok and items_ok,
        "warehouse_rows": counts,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    for key in (
        "events",
        "orders",
        "order_lines",
        "raw_seconds",
        "raw_cpu_seconds",
        "warehouse_seconds",
        "warehouse_cpu_seconds",
        "raw_to_warehouse_seconds",
        "load_average_1m",
        "reconciled",
        "passed",
    ):
        print(f"{key:>26}: {result[key]}")
    out = ROOT / "bench" / "results" / "pipelines.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
