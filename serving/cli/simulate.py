"""``storeloop simulate``: the synthetic shoppers, in-process or against a running server.

This module is the only place that knows both sides: it may build the app and create the admin
(serving code), then hands the simulator nothing but an HTTP client and admin credentials. The
simulator itself (``storefront.synthetic``) never imports the server.

    storeloop simulate --seed 7 --users 2000 --products 5000 --days 30 --target inprocess
    storeloop simulate --target http://127.0.0.1:8000 --admin-email a@b.c --admin-password ...
    storeloop simulate live --target http://127.0.0.1:8000 --shoppers 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import sys
from pathlib import Path
from typing import Any

ADMIN_EMAIL = "simulator-admin@storeloop.local"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "simulate",
        help="generate a demo catalog and shopper history through the real API",
        description="Synthetic shoppers with hidden preferences drive the HTTP API; ground "
        "truth is written to DATA_DIR/ground_truth.",
    )
    _common(p)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--users", type=int, default=2000)
    p.add_argument("--products", type=int, default=5000)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--start", default=None, help="first simulated day, ISO date (2026-01-05)")
    p.add_argument(
        "--workers",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="processes, each running one shard of the shoppers (default: up to 2)",
    )
    p.add_argument("--no-truth", action="store_true", help="skip writing ground truth")
    p.add_argument("--json", type=Path, default=None, help="also write the summary here")
    p.add_argument(
        "--live", type=int, default=None, metavar="N", help="same as `live --shoppers N`"
    )
    p.add_argument("--shoppers", type=int, default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=_simulate)
    sub = p.add_subparsers(dest="simulate_mode", metavar="MODE")
    live = sub.add_parser("live", help="keep N shoppers active in real time until interrupted")
    _common(live)
    live.add_argument("--shoppers", type=int, default=10)
    live.add_argument("--seed", type=int, default=7)
    live.add_argument("--users", type=int, default=500, help="population the shoppers come from")
    live.add_argument("--products", type=int, default=5000)
    live.add_argument("--think", type=float, default=2.0, help="mean seconds between visits")
    live.set_defaults(func=_live)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", default="inprocess", help="URL of a server, or `inprocess`")
    p.add_argument(
        "--admin-email", default=os.environ.get("STORELOOP_ADMIN_EMAIL"), help="URL targets"
    )
    p.add_argument(
        "--admin-password",
        default=os.environ.get("STORELOOP_ADMIN_PASSWORD"),
        help="URL targets (default $STORELOOP_ADMIN_PASSWORD)",
    )
    p.add_argument(
        "--concurrency", type=int, default=8, help="shoppers in flight at once, per worker"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")


# ----------------------------------------------------------------------------- batch runs


def _config(args: argparse.Namespace, shard: int = 0, shards: int = 1):
    from datetime import UTC, datetime

    from storefront.synthetic.runner import SimConfig

    config = SimConfig(
        seed=args.seed,
        users=args.users,
        products=args.products,
        days=args.days,
        concurrency=args.concurrency,
        shard=shard,
        shards=shards,
    )
    if args.start:
        config.start = datetime.fromisoformat(args.start).replace(tzinfo=UTC)
    return config


def _simulate(args: argparse.Namespace) -> int:
    if args.live is not None:
        args.shoppers = args.live
        args.think = 2.0
        return _live(args)
    from serving.core.config import Settings

    settings = Settings(simulation_mode=True, rate_limit_enabled=False)
    truth_dir = None if args.no_truth else settings.data_dir / "ground_truth"
    if args.target == "inprocess":
        summary = run_inprocess(
            settings,
            _config(args),
            workers=args.workers,
            ground_truth_dir=truth_dir,
            progress=not args.quiet,
        )
    else:
        if not (args.admin_email and args.admin_password):
            print("error: a URL target needs --admin-email/--admin-password (or env)")
            return 2
        summary = asyncio.run(
            _run_url(args, truth_dir, progress=not args.quiet),
        )
    _print_summary(summary)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2, default=str))
    return 0


async def _run_url(args: argparse.Namespace, truth_dir: Path | None, progress: bool) -> dict:
    import httpx

    from storefront.synthetic.client import Api
    from storefront.synthetic.runner import simulate

    config = _config(args)
    if args.workers > 1:
        return await asyncio.to_thread(
            run_sharded,
            args.target,
            None,
            config,
            args.admin_email,
            args.admin_password,
            workers=args.workers,
            ground_truth_dir=truth_dir,
            progress=progress,
        )
    async with httpx.AsyncClient(base_url=args.target, timeout=60.0) as http:
        with _Progress(config, enabled=progress) as bar:
            _, summary = await simulate(
                Api(http),
                config,
                args.admin_email,
                args.admin_password,
                ground_truth_dir=truth_dir,
                on_progress=bar.update,
            )
    return summary


def run_inprocess(
    settings: Any,
    config: Any,
    *,
    workers: int = 1,
    ground_truth_dir: Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Migrate, create an admin, build the app in simulation mode and drive it in-process.

    The catalog is loaded through one app, then the shoppers run against a fresh one (so its
    search index is built from the loaded catalog); with ``workers > 1`` each worker process
    builds its own in-process app on the same database and event log and runs one shard.
    """
    from serving.db import migrate
    from serving.db.engine import Database
    from serving.services.accounts import create_admin

    settings = settings.model_copy(update={"simulation_mode": True, "rate_limit_enabled": False})
    settings.ensure_dirs()
    _ = settings.jwt_secret  # create it once, before any worker races for it
    migrate.upgrade(settings.sqlalchemy_url)
    password = secrets.token_urlsafe(16)
    db = Database(settings.sqlalchemy_url)
    with db.session(write=True) as session:
        create_admin(session, email=ADMIN_EMAIL, password=password)
    db.dispose()
    return run_sharded(
        "inprocess",
        settings,
        config,
        ADMIN_EMAIL,
        password,
        workers=workers,
        ground_truth_dir=ground_truth_dir,
        progress=progress,
    )


@contextlib.asynccontextmanager
async def _client(target: str, settings: Any, *, loader: bool = False):
    """An httpx client for a URL, or a client for a fresh in-process app whose lifespan runs here.

    In-process requests go through ``AsgiClient``, which calls the ASGI app the way a server
    does, without httpx's client machinery (a large share of the CPU per request otherwise).
    The ``loader`` app only imports the catalog: it builds no search index (an empty one
    would be published and then served by the shopping apps, which would never see the
    products imported with simulated timestamps).
    """
    if target != "inprocess":
        import httpx

        async with httpx.AsyncClient(base_url=target, timeout=120.0) as http:
            yield http
        return
    from serving.app import create_app
    from storefront.synthetic.inprocess import AsgiClient

    if loader:
        settings = settings.model_copy(update={"search_build_on_start": False})
    app = create_app(settings)
    # An ASGI client does not run the lifespan; the event log starts there.
    async with app.router.lifespan_context(app):
        yield AsgiClient(app)


# ----------------------------------------------------------------------------- shards


def run_sharded(
    target: str,
    settings: Any,
    config: Any,
    admin_email: str,
    admin_password: str,
    *,
    workers: int,
    ground_truth_dir: Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Load the catalog once, then run one shard of the users per worker process.

    Every user belongs to one shard (``runner.shard_owners``: split so that each day's visits
    are even across shards); all of a user's visits run in that process, in order, with the
    same per-visit generators as a single-process run. Each worker talks
    HTTP to ``target``: a URL, or its own in-process app on the same database and event log.
    """
    import time
    from dataclasses import replace

    from storefront.synthetic import truth
    from storefront.synthetic.client import Api
    from storefront.synthetic.runner import build_world, load_shop, merge_results

    started = time.perf_counter()
    world = build_world(config)

    async def load(bar: _Progress):
        async with _client(target, settings, loader=True) as http:
            api = Api(http)
            loaded = await load_shop(
                api, config, admin_email, admin_password, world=world, on_progress=bar.update
            )
            return loaded, api.requests

    with _Progress(config, enabled=progress, world=world) as bar:
        loaded, load_requests = asyncio.run(load(bar))
        if workers <= 1:
            # The shop restocks into its catalog's stock; the ground truth keeps the initial one.
            catalog, pop, queries = world
            own = (replace(catalog, stock=catalog.stock.copy()), pop, queries)
            shard = _run_shard(
                target, settings, config, admin_email, admin_password, loaded, bar.update, own
            )
            results = [asyncio.run(shard)]
        else:
            args = (target, settings, config, admin_email, admin_password, loaded)
            results = _run_workers(workers, args, bar, world)
    results.sort(key=lambda r: r["shard"])
    summary, user_ids = merge_results(results, loaded, started)
    summary["requests"] = load_requests + sum(r["stats"]["requests"] for r in results)
    summary["workers"] = workers
    if ground_truth_dir is not None:
        truth_started = time.perf_counter()
        catalog, pop, queries = world
        truth.write_ground_truth(
            ground_truth_dir, catalog, pop, queries, loaded.product_ids, user_ids
        )
        summary["truth_seconds"] = time.perf_counter() - truth_started
    summary["seconds"] = time.perf_counter() - started
    summary["events_per_second"] = summary["events"] / max(1e-9, summary["seconds"])
    return summary


def _run_workers(
    workers: int, args: tuple, bar: _Progress, world: Any = None
) -> list[dict[str, Any]]:
    """One process per shard; returns their results (an error result if one failed).

    Forked workers inherit the parent's world (catalog, shoppers, queries) instead of building
    it again; spawned ones (no fork on this platform) rebuild it from the seed.
    """
    import multiprocessing as mp
    import queue as queue_mod
    from dataclasses import replace

    # Fork where we can: the parent has imported the app already (seconds of sklearn & co),
    # and holds no live threads or connections once loading is over.
    forking = "fork" in mp.get_all_start_methods()
    spawn = mp.get_context("fork" if forking else "spawn")
    done = spawn.Value("l", 0)
    results_q = spawn.Queue()
    day_barrier = spawn.Barrier(workers, timeout=900)
    target, settings, config, *rest = args
    procs = [
        spawn.Process(
            target=_shard_main,
            args=(
                target,
                settings,
                replace(config, shard=k, shards=workers),
                *rest,
                done,
                results_q,
                day_barrier,
                world if forking else None,
            ),
            name=f"simulate-shard-{k}",
        )  # fmt: skip
        for k in range(workers)
    ]
    for proc in procs:
        proc.start()
    results: list[dict[str, Any]] = []
    seen = 0
    try:
        while len(results) < workers:
            try:
                result = results_q.get(timeout=0.5)
            except queue_mod.Empty:
                if any(p.exitcode not in (None, 0) for p in procs):
                    raise RuntimeError("a simulation worker died") from None
            else:
                if "error" in result:
                    raise RuntimeError(f"simulation shard {result['shard']}: {result['error']}")
                results.append(result)
            now = done.value
            bar.update("session", now - seen)
            seen = now
    except BaseException:
        for proc in procs:  # the others would wait at the day barrier for the failed one
            if proc.is_alive():
                proc.terminate()
        raise
    finally:
        for proc in procs:
            proc.join(timeout=60)
    return results


def _shard_main(
    target, settings, config, email, password, loaded, done, results_q, day_barrier, world=None
) -> None:
    """Worker process: shop one shard and put its result (or its error) on the queue."""
    import traceback

    async def after_day(day: int) -> None:
        await asyncio.to_thread(day_barrier.wait)

    try:
        shard = _run_shard(
            target, settings, config, email, password, loaded, done, world, after_day
        )
        result = asyncio.run(shard)
    except BaseException as exc:  # report, then fail the process too
        results_q.put({"shard": config.shard, "error": f"{exc!r}\n{traceback.format_exc()}"})
        raise
    results_q.put(result)


async def _run_shard(
    target, settings, config, email, password, loaded, done, world=None, after_day=None
) -> dict[str, Any]:
    from storefront.synthetic.client import Api
    from storefront.synthetic.runner import shard_result, shop

    def tick(kind: str, n: int) -> None:
        if callable(done):
            done(kind, n)
            return
        with done.get_lock():
            done.value += n

    async with _client(target, settings) as http:
        api = Api(http)
        ctx = await shop(
            api,
            config,
            loaded,
            world=world,
            admin_email=email,
            admin_password=password,
            on_progress=tick,
            after_day=after_day,
        )
        result = shard_result(ctx)
    result["shard"] = config.shard
    result["stats"]["requests"] = api.requests
    return result


class _Progress:
    """One tqdm bar over catalog loading and visits (totals are known up front)."""

    def __init__(self, config: Any, *, enabled: bool, world: Any = None) -> None:
        self.config = config
        self.enabled = enabled
        self.world = world
        self.bar: Any = None

    def __enter__(self) -> _Progress:
        if not self.enabled:
            return self
        from dataclasses import replace

        from tqdm import tqdm

        from storefront.synthetic.runner import build_world, day_schedule

        _, pop, _ = self.world or build_world(self.config)
        every = replace(self.config, shard=0, shards=1)
        sessions = sum(
            sum(len(s) for s in day_schedule(every, pop, d).values())
            for d in range(self.config.days)
        )
        self.bar = tqdm(
            total=self.config.products + sessions, unit="step", desc="loading", file=sys.stderr
        )
        return self

    def update(self, kind: str, n: int) -> None:
        if self.bar is not None and n:
            if kind == "session" and self.bar.desc != "shopping":
                self.bar.set_description("shopping")
            self.bar.update(n)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


def _print_summary(summary: dict[str, Any]) -> None:
    print(
        f"sessions {summary['sessions']:,}  events {summary['events']:,}  "
        f"orders {summary['orders']:,}  revenue {summary['revenue']:,.2f} EUR\n"
        f"conversion {summary['conversion_rate']:.1%}  cart abandonment "
        f"{summary['cart_abandonment_rate']:.1%}  declines {summary['declines']:,}  "
        f"cancellations {summary['cancellations']:,}\n"
        f"searches {summary['searches']:,} (zero results {summary['zero_result_rate']:.1%})  "
        f"views {summary['product_views']:,}  add-to-carts {summary['add_to_carts']:,}  "
        f"reviews {summary['reviews']:,}\n"
        f"{summary['seconds']:.1f}s ({summary['load_seconds']:.1f}s loading), "
        f"{summary['events_per_second']:,.0f} events/s, {summary['requests']:,} requests"
    )
    if summary.get("checkout_unavailable"):
        print(
            f"note: {summary['checkout_unavailable']:,} checkouts found no orders/payments "
            "endpoint (not deployed yet)"
        )


# ----------------------------------------------------------------------------- live mode


def _live(args: argparse.Namespace) -> int:
    if args.target == "inprocess":
        print("error: live mode needs a running server: --target http://host:port")
        return 2
    if not (args.admin_email and args.admin_password):
        print("error: live mode needs --admin-email/--admin-password (or env) to load a catalog")
        return 2
    from storefront.synthetic.live import run_live

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            run_live(
                args.target,
                shoppers=args.shoppers,
                seed=args.seed,
                users=getattr(args, "users", 500),
                products=getattr(args, "products", 5000),
                admin_email=args.admin_email,
                admin_password=args.admin_password,
                think_seconds=getattr(args, "think", 2.0),
                verbose=not args.quiet,
            )
        )
    return 0
