"""Checkout benchmarks on a real uvicorn server: sustained throughput and a stampede.

    .venv/bin/python -m bench.bench_checkout [--db sqlite|postgresql] [--seconds 20]
        [--clients 32] [--workers 2] [--buyers 1000] [--units 100]
        [--pg-synchronous-commit off|on] [--pricing flat|rates|coupon]

Sustained: ``clients`` keep-alive connections place one-line orders (simulated provider
in-process, webhooks on) for ``seconds``; prints orders/s and latency percentiles. Stampede:
``buyers`` threads released together for ``units`` units; checks exactly ``units`` orders and
reports the wall time. ``--pricing`` (bench/_pricing_seed.py): ``flat`` (empty rate tables: the
flat fallback shipping, no tax), ``rates`` (weight-priced shipping and VAT on every order) or
``coupon`` (those and one coupon code on every open-loop order); the open loop then reports how
many orders carried the tax, shipping and discount. The load generator runs on the same
machine and competes for its cores.
JSON goes to bench/results/checkout_<db>_w<workers>.json (with the load average); with
``--pg-synchronous-commit on`` to checkout_postgresql_w<workers>_sync.json, and with a pricing
variant other than ``flat`` to checkout_<db>_w<workers>_<variant>.json.

Commit durability is like for like by default: SQLite runs as the app configures it (WAL,
``synchronous=NORMAL``: a commit waits for the OS, not the disk) and PostgreSQL with
``synchronous_commit=off`` (STORELOOP_PG_SYNCHRONOUS_COMMIT), its counterpart. ``on`` makes
every PostgreSQL commit wait for ``fdatasync``; the run then reports the disk's own sync times
(bench/_fsync_probe.py), which set the latency tail on a disk that stalls.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from sqlalchemy import create_engine, func, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._fsync_probe import FsyncProbe  # noqa: E402
from bench._pricing_seed import VARIANTS, seed_pricing  # noqa: E402
from bench._server import (  # noqa: E402
    cpu_jiffies,
    process_tree_cpu_seconds,
    processes_cpu_seconds,
    server_pid_on_port,
    steal_share,
)
from devtools.server import ServerProcess, server_env  # noqa: E402
from devtools.shop_db import ADDRESS, Shop  # noqa: E402
from serving.core.config import Settings, with_server_option  # noqa: E402
from serving.db import migrate  # noqa: E402
from serving.db.tables.orders import Order, OrderLine  # noqa: E402
from serving.db.tables.pricing import OrderCharge, PromotionRedemption  # noqa: E402

PG_URL = os.environ.get("STORELOOP_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
STARTUP_SECONDS = 240
_RETRIES: list[int] = []  # connection-level retries of an order (same Idempotency-Key)


def _database(kind: str, tmp: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp / 'bench.db'}"
    admin = create_engine(Settings(database_url=PG_URL).sqlalchemy_url)
    with admin.begin() as conn:
        conn.execute(text('DROP SCHEMA IF EXISTS "bench_checkout" CASCADE'))
        conn.execute(text('CREATE SCHEMA "bench_checkout"'))
    admin.dispose()
    return with_server_option(PG_URL, "search_path", "bench_checkout")


def _serve(
    url: str, data_dir: Path, secret: str, workers: int, log_path: Path, commit: str
) -> ServerProcess:
    """The shop on ``url`` under devtools' one launcher, its output in ``log_path``.

    Start-up imports the whole app (search, recs, sklearn); on a loaded 2-core machine with no
    bytecode cache that alone took over a minute, which is why a 60 s limit failed before.
    """
    env = {
        **server_env(),
        "STORELOOP_PG_SYNCHRONOUS_COMMIT": commit,
        "DATA_DIR": str(data_dir),
        "DATABASE_URL": url,
        "JWT_SECRET": secret,
        "STORELOOP_RATE_LIMIT_ENABLED": "false",
        "STORELOOP_LOG_LEVEL": "warning",
    }
    server = ServerProcess(env=env, workers=workers, log_path=log_path)
    try:
        return server.start(timeout=STARTUP_SECONDS)
    except RuntimeError as exc:
        raise SystemExit(f"server did not start: {exc}") from exc


def _order(client: httpx.Client, token: str, pid: int, pm: str) -> tuple[int, float]:
    """One order; a connection the server closed under it is retried with the same key.

    That is what the Idempotency-Key is for: the retry gets the first attempt's order (or
    places it, if the first never arrived), never a second one. With a thousand threads on two
    cores a late thread can pick a pooled connection just as the server's keep-alive timer
    closes it."""
    started = time.perf_counter()
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}
    body = {
        "items": [{"product_id": pid, "quantity": 1}],
        "shipping_address": ADDRESS,
        "payment_method": pm,
    }
    for attempt in range(3):
        try:
            r = client.post("/api/v1/orders", json=body, headers=headers)
            break
        except httpx.TransportError:
            if attempt == 2:
                raise
            _RETRIES.append(1)
    return r.status_code, time.perf_counter() - started


def sustained(base: str, shop: Shop, seconds: float, clients: int) -> dict:
    pid = shop.product(10_000_000)
    tokens = shop.customers(clients)
    pm = httpx.post(
        f"{base}/api/v1/payments/methods",
        json={"card_number": "4242424242424242", "exp_month": 12, "exp_year": 2099, "cvc": "123"},
    ).json()["payment_method"]
    latencies: list[float] = []
    codes: dict[int, int] = {}
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds + 2

    def run(i: int) -> None:
        with httpx.Client(base_url=base, timeout=30) as client:
            while time.monotonic() < stop_at:
                code, took = _order(client, tokens[i], pid, pm)
                with lock:
                    codes[code] = codes.get(code, 0) + 1
                    if time.monotonic() > stop_at - seconds:  # skip the 2 s warm-up
                        latencies.append(took)

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(run, range(clients)))
    latencies.sort()
    pct = lambda q: round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 1)  # noqa: E731
    return {
        "seconds": seconds,
        "clients": clients,
        "orders_per_s": round(len(latencies) / seconds, 1),
        "p50_ms": pct(0.50),
        "p95_ms": pct(0.95),
        "p99_ms": pct(0.99),
        "status_codes": codes,
    }


def at_rate(
    base: str,
    shop: Shop,
    rate: float,
    seconds: float,
    products: int,
    stocked: tuple[list[int], list[str]] | None = None,
    probe_dir: Path | None = None,
    extra: dict | None = None,
) -> dict:
    """Open loop: ``rate`` orders per second on a fixed schedule, whatever the server does.

    A shop's orders spread over many products, so each request buys one unit of one of
    ``products`` well-stocked products (the stampede covers the single hot product). Latency is
    measured from each request's scheduled time, so a queue behind a slow request counts.
    ``extra`` goes into every order's body (a coupon code).
    """
    from bench._open_loop import run_open_loop

    probe_dir = probe_dir or Path(tempfile.gettempdir())

    pids, tokens = stocked or stock_shop(shop, products)
    pm = httpx.post(
        f"{base}/api/v1/payments/methods",
        json={"card_number": "4242424242424242", "exp_month": 12, "exp_year": 2099, "cvc": "123"},
    ).json()["payment_method"]
    server_pid = server_pid_on_port(int(base.rsplit(":", 1)[1]))
    bodies = [
        json.dumps(
            {
                "items": [{"product_id": pid, "quantity": 1}],
                "shipping_address": ADDRESS,
                "payment_method": pm,
                **(extra or {}),
            }
        ).encode()
        for pid in pids
    ]

    def make_request(i: int):
        headers = {
            "Authorization": f"Bearer {tokens[i % len(tokens)]}",
            "Idempotency-Key": uuid.uuid4().hex,
            "Content-Type": "application/json",
        }
        return ("POST", "/api/v1/orders", headers, bodies[(i * 7919) % len(bodies)])

    cpu0 = process_tree_cpu_seconds(server_pid)
    pg0, jiffies0 = processes_cpu_seconds("postgres"), cpu_jiffies()
    wall0 = time.perf_counter()
    with FsyncProbe(probe_dir) as probe:
        result = run_open_loop(base, make_request, rate=rate, seconds=seconds, warmup=2)
    cpu = process_tree_cpu_seconds(server_pid) - cpu0
    pg, jiffies = processes_cpu_seconds("postgres") - pg0, cpu_jiffies()
    wall = time.perf_counter() - wall0
    sent = rate * (seconds + 2)
    result["server_cpu_ms_per_order"] = round(1000 * cpu / sent, 3)
    result["server_cores_used"] = round(cpu / wall, 2)
    if not shop.db.is_sqlite:  # every postgres process on the machine, backends included
        result["postgres_cpu_ms_per_order"] = round(1000 * pg / sent, 3)
    result["cpu_steal_share"] = steal_share(jiffies0, jiffies)
    result["products"] = products
    result["disk_fsync"] = probe.summary(skip_seconds=2)
    result["priced"] = priced_orders(shop)
    return result


def priced_orders(shop: Shop) -> dict:
    """How many orders carry shipping, tax and a coupon: the variant did what it says."""
    with shop.db.session() as s:
        charges = s.execute(
            select(
                func.count(),
                func.sum(func.sign(OrderCharge.shipping_minor)),
                func.sum(func.sign(OrderCharge.tax_minor)),
                func.sum(func.sign(OrderCharge.discount_minor)),
            )
        ).one()
        redemptions = s.scalar(select(func.count()).select_from(PromotionRedemption))
    return {
        "orders_with_charges": charges[0],
        "with_shipping": int(charges[1] or 0),
        "with_tax": int(charges[2] or 0),
        "with_discount": int(charges[3] or 0),
        "coupon_redemptions": redemptions,
    }


def stock_shop(shop: Shop, products: int) -> tuple[list[int], list[str]]:
    """The open loop's products and customers, made before the server starts: a server that
    is already up would spend the first seconds of the run indexing a thousand new products
    (search and recommendations follow catalog changes), which is set-up, not checkout."""
    stocked = [shop.product(10_000_000) for _ in range(products)], shop.customers(200)
    analyze_loaded_tables(shop)
    return stocked


def analyze_loaded_tables(shop: Shop) -> None:
    """On PostgreSQL, gather statistics on every table that has rows, as autovacuum does
    within a minute of a bulk load, so that a run measures a shop whose catalog is known.

    Without them the planner took the new catalog for empty: pricing a batch read a thousand
    products through the status index. Empty tables are left alone: analyzed empty, their
    foreign-key checks would be planned as scans and stay so until autovacuum came by."""
    if shop.db.is_sqlite:
        return
    with shop.db.engine.begin() as conn:
        tables = conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        ).scalars()
        for table in list(tables):
            if conn.execute(text(f'SELECT EXISTS (SELECT FROM "{table}")')).scalar():
                conn.execute(text(f'ANALYZE "{table}"'))
    # The set-up dropped and created a schema of a hundred tables and indexes: thousands of
    # files for the next checkpoint to fsync, which stalled commits for seconds when it fell
    # inside a run. A checkpoint now puts that behind us (superuser only; else skipped).
    try:
        with shop.db.engine.connect() as conn:
            conn.execute(text("CHECKPOINT"))
    except Exception as exc:  # noqa: BLE001 - a role without the right just skips it
        print(f"(no CHECKPOINT before the run: {exc.__class__.__name__})", file=sys.stderr)


def stampede(base: str, shop: Shop, buyers: int, units: int) -> dict:
    _RETRIES.clear()
    pid = shop.product(units)
    tokens = shop.customers(buyers)
    pm = httpx.post(
        f"{base}/api/v1/payments/methods",
        json={"card_number": "4242424242424242", "exp_month": 12, "exp_year": 2099, "cvc": "123"},
    ).json()["payment_method"]
    barrier = threading.Barrier(buyers)
    # Idle connections are dropped after 2 s, before the server's 5 s keep-alive timeout.
    limits = httpx.Limits(
        max_connections=buyers, max_keepalive_connections=buyers, keepalive_expiry=2.0
    )

    with httpx.Client(base_url=base, timeout=120, limits=limits) as client:

        def buy(i: int) -> int:
            barrier.wait()
            return _order(client, tokens[i], pid, pm)[0]

        started = time.perf_counter()
        with ThreadPoolExecutor(buyers) as pool:
            codes = list(pool.map(buy, range(buyers)))
        took = time.perf_counter() - started
    with shop.db.session() as s:
        orders = s.scalar(
            select(func.count())
            .select_from(Order)
            .join(OrderLine, OrderLine.order_id == Order.id)
            .where(Order.status == "fulfilled", OrderLine.product_id == pid)
        )
        sold = s.scalar(
            select(func.coalesce(func.sum(OrderLine.quantity), 0)).where(
                OrderLine.product_id == pid
            )
        )
    return {
        "buyers": buyers,
        "units": units,
        "accepted": codes.count(201),
        "sold_out": codes.count(409),
        "other": len(codes) - codes.count(201) - codes.count(409),
        "fulfilled_orders": orders,
        "units_in_orders": sold,
        "seconds": round(took, 2),
        "retried_after_connection_loss": len(_RETRIES),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--buyers", type=int, default=1000)
    ap.add_argument("--units", type=int, default=100)
    ap.add_argument(
        "--rate",
        type=float,
        default=300.0,
        help="orders/s of the open-loop phase (the target: 300 orders/s with p99 < 100 ms)",
    )
    ap.add_argument("--products", type=int, default=1000, help="products the open loop buys")
    ap.add_argument(
        "--skip-closed-loop", action="store_true", help="only the open-loop phase and stampede"
    )
    ap.add_argument(
        "--pg-synchronous-commit",
        choices=("off", "on"),
        default="off",
        help="PostgreSQL commits wait for the disk (on) or, like SQLite's here, for the OS (off)",
    )
    ap.add_argument(
        "--pricing",
        choices=VARIANTS,
        default="flat",
        help="flat shipping, no tax (flat); shipping and tax rates (rates); and a coupon (coupon)",
    )
    args = ap.parse_args()
    commit = args.pg_synchronous_commit
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        url = _database(args.db, tmp)
        migrate.upgrade(Settings(database_url=url).sqlalchemy_url)
        secret = secrets.token_urlsafe(48)
        shop = Shop(url, secret)
        stocked = stock_shop(shop, args.products)
        extra = seed_pricing(shop, stocked[0], args.pricing)
        if args.pricing != "flat":
            analyze_loaded_tables(shop)  # the rate tables and weights just written too
        server = _serve(url, tmp / "data", secret, args.workers, tmp / "server.log", commit)
        base = server.url
        try:
            result = {
                "db": args.db,
                "workers": args.workers,
                "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "commits_wait_for": "the OS"
                if args.db == "sqlite" or commit == "off"
                else "the disk (fdatasync)",
                "durability": "sqlite synchronous=NORMAL (WAL)"
                if args.db == "sqlite"
                else f"postgresql synchronous_commit={commit}",
                "pricing": args.pricing,
                "load_avg_before": [round(x, 2) for x in os.getloadavg()],
                "at_rate": at_rate(
                    base,
                    shop,
                    args.rate,
                    args.seconds,
                    args.products,
                    stocked,
                    probe_dir=tmp,
                    extra=extra,
                ),
                "sustained": None
                if args.skip_closed_loop
                else sustained(base, shop, args.seconds, args.clients),
                "stampede": stampede(base, shop, args.buyers, args.units),
                "load_avg_after": [round(x, 2) for x in os.getloadavg()],
            }
        finally:
            server.stop()
            shop.close()
    print(json.dumps(result, indent=2))
    suffix = "_sync" if args.db == "postgresql" and commit == "on" else ""
    if args.pricing != "flat":
        suffix += f"_{args.pricing}"
    out = ROOT / "bench" / "results" / f"checkout_{args.db}_w{args.workers}{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
