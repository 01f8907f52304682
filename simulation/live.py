"""Live mode: keep N shoppers active against a running server, in real time, until stopped.

Used by ``make run`` so the demo shop shows life, and by load tests as a realistic traffic mix.
Visits are the same ``Visit`` objects as in batch runs, but the clock is the wall clock and the
shoppers pause between visits like people do.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from datetime import UTC, datetime

import httpx

from simulation.client import Api
from simulation.context import SimConfig
from simulation.runner import (
    admin_token,
    build_world,
    existing_products,
    load_categories,
    load_products,
    make_context,
)
from simulation.sessions import UserState, Visit


async def run_live(
    target: str,
    *,
    shoppers: int,
    seed: int = 7,
    users: int = 500,
    products: int = 5000,
    admin_email: str,
    admin_password: str,
    think_seconds: float = 2.0,
    verbose: bool = True,
    stop_after: float | None = None,
) -> dict[str, int]:
    """Run until cancelled (or ``stop_after`` seconds); returns the counters so far."""
    config = SimConfig(seed=seed, users=users, products=products)
    world = build_world(config)
    async with httpx.AsyncClient(base_url=target, timeout=30.0) as http:
        api = Api(http, reprobe_seconds=60.0)
        now = datetime.now(UTC)
        token = await admin_token(api, admin_email, admin_password, now)
        category_ids = await load_categories(api, world[0], token, now)
        known = await existing_products(api, now)
        ids = await load_products(api, world[0], token, category_ids, now, known=known)
        ctx = make_context(api, world, ids, category_ids)
        states: dict[int, UserState] = {}
        weights = list(world[1].activity)
        started = time.monotonic()
        last_report = started
        picker = random.Random(f"live:{seed}")

        async def shopper(slot: int) -> None:
            visit_no = 0
            while stop_after is None or time.monotonic() - started < stop_after:
                u = picker.choices(range(users), weights=weights)[0]
                state = states.setdefault(u, UserState())
                rng = random.Random(f"live:{seed}:{slot}:{visit_no}")
                visit_no += 1
                # A server restarting is not the shopper's problem: carry on with the next visit.
                with contextlib.suppress(httpx.HTTPError):
                    await Visit(ctx, u, state, datetime.now(UTC), rng).run()
                await asyncio.sleep(rng.expovariate(1.0 / think_seconds))

        async def reporter() -> None:
            nonlocal last_report
            while True:
                await asyncio.sleep(10)
                s = ctx.stats
                if verbose:
                    print(
                        f"live: {s.sessions} visits, {s.events} events, {s.orders} orders, "
                        f"{api.requests / max(1e-9, time.monotonic() - started):.1f} req/s",
                        flush=True,
                    )

        report = asyncio.create_task(reporter())
        try:
            await asyncio.gather(*(shopper(i) for i in range(shoppers)))
        finally:
            report.cancel()
        s = ctx.stats
        return {
            "sessions": s.sessions,
            "events": s.events,
            "events_rejected": s.events_rejected,
            "orders": s.orders,
            "requests": api.requests,
        }
