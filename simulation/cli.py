"""``storeloop simulate``: the synthetic shoppers, in-process or against a running server.

Registered with the ``storeloop`` command through the ``storeloop.commands`` entry point
(pyproject.toml), so serving never imports this package. For ``--target inprocess`` the command
line hands :func:`register` a factory of ``LocalShop`` (``simulation.shop``): schema, admin and
fresh apps come from it, and the shoppers only send HTTP requests to an ASGI callable.

    storeloop simulate --seed 7 --users 2000 --products 5000 --days 30 --target inprocess
    storeloop simulate --target http://127.0.0.1:8000 --admin-email a@b.c --admin-password ...
    storeloop simulate live --target http://127.0.0.1:8000 --shoppers 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from simulation.shop import LocalShop

__all__ = ["register"]


def register(
    subparsers: argparse._SubParsersAction, *, local_shop: Callable[[], LocalShop]
) -> None:
    """Add ``simulate`` (and ``simulate live``); ``local_shop`` builds the in-process shop."""
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
    p.set_defaults(func=functools.partial(_simulate, local_shop=local_shop))
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

    from simulation.context import SimConfig

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


def _simulate(args: argparse.Namespace, *, local_shop: Callable[[], LocalShop]) -> int:
    if args.live is not None:
        args.shoppers = args.live
        args.think = 2.0
        return _live(args)
    from simulation.workers import run_inprocess

    shop = local_shop()
    truth_dir = None if args.no_truth else shop.data_dir / "ground_truth"
    if args.target == "inprocess":
        summary = run_inprocess(
            shop,
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

    from simulation.client import Api
    from simulation.progress import Progress
    from simulation.runner import simulate
    from simulation.workers import run_sharded

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
        with Progress(config, enabled=progress) as bar:
            _, summary = await simulate(
                Api(http),
                config,
                args.admin_email,
                args.admin_password,
                ground_truth_dir=truth_dir,
                on_progress=bar.update,
            )
    return summary


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
    from simulation.live import run_live

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
