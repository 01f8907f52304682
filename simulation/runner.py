"""Running a simulation: load the catalog, let the shoppers loose day by day, write the truth.

The runner only speaks HTTP (through ``client.Api``); whoever calls it decides whether that
HTTP goes over the network or into an in-process ASGI app. It can also run one *shard* of the
population (``shard_owners``: users split so that each day's visits are even), so a caller with
several cores can run one process per shard against the same database, each with its own
in-process app.
"""

from __future__ import annotations

import asyncio
import gc
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from simulation import truth
from simulation.catalog import CURRENCY, Catalog, generate_catalog
from simulation.client import Api, route_missing
from simulation.context import Context, SimConfig, Stats
from simulation.habits import deliver_parcels, ensure_coupon, process_returns
from simulation.marketplace import ensure_sellers
from simulation.queries import KeywordIndex, QuerySet, generate_queries
from simulation.sessions import UserState, Visit
from simulation.shards import assign_shards, visit_counts
from simulation.shoppers import Population, generate_population

#: Relative arrival rate by hour of day (UTC): quiet nights, a lunch bump, an evening peak.
HOURLY = np.array(
    [1, 0.6, 0.4, 0.3, 0.3, 0.5, 1, 2, 3, 3.5, 4, 4.5]
    + [5.5, 5, 4.5, 4.5, 5, 5.5, 6.5, 8, 8.5, 7, 4.5, 2.5]
)


# ------------------------------------------------------------------------------------ loading


async def admin_token(api: Api, email: str, password: str, at: datetime) -> str:
    """Sign in as the admin whose credentials the caller was given.

    A 503 means what its ``Retry-After`` says (the shop is starting up or its database is
    briefly busy, as when several shards start on one SQLite file at once): wait and sign in
    again, a few times, like any client should."""
    for attempt in range(5):
        r = await api.call(
            "POST", "/api/v1/auth/token", at=at, data={"username": email, "password": password}
        )
        if r.status_code != 503 or attempt == 4:
            break
        await asyncio.sleep(float(r.headers.get("retry-after", "1")))
    if r.status_code != 200:
        raise RuntimeError(f"admin login failed: {r.status_code} {r.text[:200]}")
    return r.json()["access_token"]


async def load_categories(api: Api, catalog: Catalog, token: str, at: datetime) -> dict[str, int]:
    """Create the category tree (parents first), reusing categories that already exist."""
    r = await api.call("GET", "/api/v1/categories", at=at)
    r.raise_for_status()
    ids = {c["slug"]: int(c["id"]) for c in r.json()["data"]}
    for spec in catalog.categories:
        if spec.slug in ids:
            continue
        body = {"slug": spec.slug, "name": spec.name, "parent_id": ids.get(spec.parent or "")}
        r = await api.call("POST", "/api/v1/categories", at=at, token=token, json=body)
        if r.status_code != 201:
            raise RuntimeError(f"creating category {spec.slug}: {r.status_code} {r.text[:200]}")
        ids[spec.slug] = int(r.json()["id"])
    return ids


async def existing_products(api: Api, at: datetime) -> dict[str, int]:
    """SKU -> id of every active product, paging through the public listing."""
    found: dict[str, int] = {}
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 100, "sort": "id"}
        if cursor:
            params["cursor"] = cursor
        r = await api.call("GET", "/api/v1/products", at=at, params=params)
        r.raise_for_status()
        body = r.json()
        found.update({p["sku"]: int(p["id"]) for p in body["data"]})
        cursor = body.get("next_cursor")
        if not cursor:
            return found


#: Products per ``POST /api/v1/products/bulk`` (the endpoint takes at most 500).
BULK_SIZE = 500


async def load_products(
    api: Api,
    catalog: Catalog,
    token: str,
    category_ids: dict[str, int],
    at: datetime,
    *,
    indices: list[int] | None = None,
    concurrency: int = 8,
    known: dict[str, int] | None = None,
    on_done: Callable[[int], None] | None = None,
    bulk: bool = True,
) -> dict[str, int]:
    """Create products through the admin API; returns SKU -> id for those it handled.

    With ``bulk`` the catalog goes in through ``POST /api/v1/products/bulk``, batches of
    ``BULK_SIZE`` sent one after another in catalog order, so the server assigns ids in catalog
    order (reproducible). A server without the bulk route (its router answers 404/405) gets one
    ``POST /api/v1/products`` per product instead, ``concurrency`` at a time.
    """
    known = known or {}
    todo = list(range(len(catalog))) if indices is None else list(indices)
    out = {catalog.skus[i]: known[catalog.skus[i]] for i in todo if catalog.skus[i] in known}
    todo = [i for i in todo if catalog.skus[i] not in known]

    backdate = True  # a server outside simulation mode refuses historic created_at stamps

    def body(i: int) -> dict[str, Any]:
        payload = catalog.payload(i, category_ids[catalog.leaf_slug(int(catalog.leaf[i]))])
        if not backdate:
            payload.pop("created_at", None)
        return payload

    while bulk and todo:
        batch, rest = todo[:BULK_SIZE], todo[BULK_SIZE:]
        r = await api.call(
            "POST",
            "/api/v1/products/bulk",
            at=at,
            token=token,
            json={"products": [body(i) for i in batch]},
        )
        if r.status_code in (404, 405) and route_missing(r):
            break  # an older server: fall back to one product per request
        if r.status_code == 403 and backdate and "simulation mode" in r.text:
            backdate = False  # a live server: products are new as of now
            continue
        if r.status_code != 201:
            raise RuntimeError(f"bulk product import: {r.status_code} {r.text[:200]}")
        ids = r.json()["ids"]
        if len(ids) != len(batch):
            raise RuntimeError(f"bulk product import: {len(ids)} ids for {len(batch)} products")
        out.update({catalog.skus[i]: int(pid) for i, pid in zip(batch, ids, strict=True)})
        todo = rest
        if on_done:
            on_done(len(batch))

    sem = asyncio.Semaphore(concurrency)

    async def create(i: int) -> None:
        async with sem:
            r = await api.call("POST", "/api/v1/products", at=at, token=token, json=body(i))
        if r.status_code != 201:
            sku = catalog.skus[i]
            raise RuntimeError(f"creating product {sku}: {r.status_code} {r.text[:200]}")
        out[catalog.skus[i]] = int(r.json()["id"])
        if on_done:
            on_done(1)

    await asyncio.gather(*(create(i) for i in todo))
    return out


# ------------------------------------------------------------------------------------ running


def build_world(config: SimConfig) -> tuple[Catalog, Population, QuerySet]:
    """The catalog, shoppers and query set for a config (pure, deterministic)."""
    catalog = generate_catalog(config.seed, config.products, config.start)
    pop = generate_population(catalog, config.users, config.seed, config.run_tag)
    queries = generate_queries(catalog, config.seed)
    return catalog, pop, queries


def shard_owners(config: SimConfig, pop: Population) -> np.ndarray:
    """The shard (worker process) of every user, balanced day by day (``shards.py``)."""
    return assign_shards(config.seed, config.start, pop.activity, config.days, config.shards)


def day_schedule(
    config: SimConfig, pop: Population, day: int, owners: np.ndarray | None = None
) -> dict[int, list[datetime]]:
    """Which of this shard's users visit on ``day`` and when (sorted start times).

    ``owners`` is ``shard_owners(config, pop)``, computed once by callers that plan many days.
    """
    day_start = config.start + timedelta(days=day)
    counts = visit_counts(config.seed, config.start, pop.activity, day)
    if config.shards > 1 and owners is None:
        owners = shard_owners(config, pop)
    hours_p = HOURLY / HOURLY.sum()
    plan: dict[int, list[datetime]] = {}
    for u in np.flatnonzero(counts):
        u = int(u)
        if owners is not None and owners[u] != config.shard:
            continue
        r = random.Random(f"{config.seed}:{u}:{day}:starts")
        starts = []
        for _ in range(int(counts[u])):
            hour = r.choices(range(24), weights=hours_p)[0]
            starts.append(day_start + timedelta(hours=hour, seconds=r.uniform(0, 3599)))
        plan[u] = sorted(starts)
    return plan


async def run_days(
    ctx: Context,
    config: SimConfig,
    states: dict[int, UserState],
    *,
    admin: str | None = None,
    on_session: Callable[[], None] | None = None,
    after_day: Callable[[int], Awaitable[None]] | None = None,
) -> None:
    """Simulate every day in order; a user's visits within a day run one after another.

    ``after_day`` runs after each day's restock: shards in several processes use it as a
    barrier, so no shard starts day d+1 before every shard has finished day d.
    """
    owners = shard_owners(config, ctx.pop) if config.shards > 1 else None
    for day in range(config.days):
        plan = day_schedule(config, ctx.pop, day, owners)
        sem = asyncio.Semaphore(config.concurrency)

        async def run_user(
            u: int, starts: list[datetime], day: int = day, sem: asyncio.Semaphore = sem
        ) -> None:
            async with sem:
                state = states.setdefault(u, UserState())
                for k, start in enumerate(starts):
                    rng = random.Random(f"{config.seed}:{u}:{day}:{k}")
                    await Visit(ctx, u, state, start, rng).run()
                    if on_session:
                        on_session()

        # Users with the most visits start first: a day ends when its last user's chain of
        # visits does, and a long chain started late would leave the process nearly idle.
        busiest_first = sorted(plan.items(), key=lambda item: (-len(item[1]), item[0]))
        await asyncio.gather(*(run_user(u, s) for u, s in busiest_first))
        if admin:
            night = config.start + timedelta(days=day + 1)
            await restock(ctx, admin, night)
            await deliver_parcels(ctx, admin, night)
            await process_returns(ctx, admin, night)
        if after_day:
            await after_day(day)


async def restock(ctx: Context, token: str, at: datetime) -> None:
    """The shop's nightly restock of what the shoppers have (nearly) sold out."""
    for index, sold in sorted(ctx.sold.items()):
        initial = int(ctx.catalog.stock[index])
        if sold >= initial - 2:
            r = await ctx.api.call(
                "POST",
                f"/api/v1/inventory/{int(ctx.product_ids[index])}/adjustments",
                at=at,
                token=token,
                json={"delta": max(20, 2 * sold), "reason": "restock"},
            )
            if r.status_code == 200:
                ctx.stats.restocks += 1
                ctx.catalog.stock[index] += max(20, 2 * sold)


def make_context(
    api: Api,
    world: tuple[Catalog, Population, QuerySet],
    product_ids: dict[str, int],
    category_ids: dict[str, int],
    trace: bool = False,
) -> Context:
    catalog, pop, queries = world
    ids = [int(product_ids[s]) for s in catalog.skus]
    return Context(
        api=api,
        catalog=catalog,
        pop=pop,
        queries=queries,
        keywords=KeywordIndex(catalog),
        product_ids=ids,
        category_ids=category_ids,
        trace=[] if trace else None,
    )


@dataclass
class Loaded:
    """What loading leaves behind for the shopping phase (picklable, shared by shards)."""

    admin_token: str
    category_ids: dict[str, int]
    product_ids: dict[str, int]  # SKU -> server id
    products_created: int
    seconds: float
    #: Server product id -> seller id of the products a third-party store sells.
    sellers: dict[int, int] = field(default_factory=dict)
    #: Seller id -> the store's sign-in (email, password).
    store_logins: dict[int, tuple[str, str]] = field(default_factory=dict)


async def load_shop(
    api: Api,
    config: SimConfig,
    admin_email: str,
    admin_password: str,
    *,
    world: tuple[Catalog, Population, QuerySet] | None = None,
    on_progress: Callable[[str, int], None] | None = None,
) -> Loaded:
    """Sign in as the admin and create the categories and products that are missing."""
    started = time.perf_counter()
    catalog = (world or build_world(config))[0]
    at = config.start - timedelta(hours=1)
    token = await admin_token(api, admin_email, admin_password, at)
    category_ids = await load_categories(api, catalog, token, at)
    known = await existing_products(api, at)
    product_ids = await load_products(
        api,
        catalog,
        token,
        category_ids,
        at,
        concurrency=config.load_concurrency,
        known=known,
        on_done=(lambda n: on_progress("load", n)) if on_progress else None,
    )
    await ensure_coupon(api, token, at, CURRENCY)
    sellers, logins = await ensure_sellers(
        api, token, at, catalog, product_ids, seed=config.seed, run_tag=config.run_tag
    )
    created = sum(1 for sku in catalog.skus if sku not in known)
    seconds = time.perf_counter() - started
    return Loaded(token, category_ids, product_ids, created, seconds, sellers, logins)


async def shop(
    api: Api,
    config: SimConfig,
    loaded: Loaded,
    *,
    world: tuple[Catalog, Population, QuerySet] | None = None,
    admin_email: str | None = None,
    admin_password: str | None = None,
    on_progress: Callable[[str, int], None] | None = None,
    after_day: Callable[[int], Awaitable[None]] | None = None,
) -> Context:
    """Run every day for this config's shard; returns the context with its counters.

    A shard in another process signs the admin in again (for the nightly restock) when given
    the credentials; tokens are short-lived, so passing one between processes is not enough.
    """
    world = world or build_world(config)
    ctx = make_context(api, world, loaded.product_ids, loaded.category_ids, trace=config.trace)
    ctx.sellers = loaded.sellers
    ctx.store_logins = loaded.store_logins
    token = loaded.admin_token
    if admin_email and admin_password:
        token = await admin_token(api, admin_email, admin_password, config.start)
    waited = 0.0
    if config.search_wait_seconds > 0:
        waited = await wait_for_search(
            api, world[0], config.start, timeout=config.search_wait_seconds
        )
    # The world, the keyword index and (in-process) the app's indexes and caches live until
    # the end of the run: keep them out of the cyclic collector's full passes, which otherwise
    # walk all of them every few hundred visits.
    gc.collect()
    gc.freeze()
    shop_started, cpu_started = time.perf_counter(), time.process_time()
    states: dict[int, UserState] = {}
    await run_days(
        ctx,
        config,
        states,
        admin=token,
        on_session=(lambda: on_progress("session", 1)) if on_progress else None,
        after_day=after_day,
    )
    ctx.stats.requests = api.requests
    ctx.timings = {
        "search_wait": waited,
        "shopping": time.perf_counter() - shop_started,
        # CPU of this whole process while shopping: in-process, the app's share is included.
        "shopping_cpu": time.process_time() - cpu_started,
    }
    return ctx


async def wait_for_search(
    api: Api, catalog: Catalog, at: datetime, *, timeout: float = 120.0
) -> float:
    """Wait until the shop's search answers from its index rather than its start-up fallback.

    A freshly started server builds its search index from the database in the background and
    meanwhile answers with a plain title match (``ranker_version`` "fallback"). Shoppers that
    started right away would see timing-dependent results, so a run waits (a few seconds) for
    the index to serve the loaded catalog. No search route: nothing to wait for. Returns the
    seconds waited.
    """
    started = time.perf_counter()
    probe = catalog.titles[0].split(",")[0]
    while time.perf_counter() - started < timeout:
        r = await api.call("GET", "/api/v1/search", at=at, params={"q": probe, "limit": 1})
        if r.status_code in (404, 405) and route_missing(r):
            break
        if r.status_code == 200:
            body = r.json()
            if body.get("ranker_version") != "fallback" and body.get("total", 0) > 0:
                break
        await asyncio.sleep(0.25)
    return time.perf_counter() - started


def shard_result(ctx: Context) -> dict[str, Any]:
    """A shard's outcome as plain data, for merging across processes."""
    api = ctx.api
    return {
        "stats": asdict(ctx.stats),
        "user_ids": dict(ctx.user_ids),
        "route_seconds": dict(api.seconds),
        "route_calls": dict(api.calls),
        "trace": ctx.trace,
        "purchases": list(ctx.purchases),
        "timings": dict(ctx.timings),
    }


def merge_results(
    results: list[dict[str, Any]], loaded: Loaded, started: float
) -> tuple[dict[str, Any], dict[int, int]]:
    """Add shards' counters up into one summary; returns it and the user ids of all shards."""
    stats = Stats()
    seconds: dict[str, float] = {}
    calls: dict[str, int] = {}
    user_ids: dict[int, int] = {}
    trace: list[tuple[Any, ...]] | None = None
    for result in results:
        stats.merge(Stats(**result["stats"]))
        user_ids.update(result["user_ids"])
        for route, n in result["route_calls"].items():
            calls[route] = calls.get(route, 0) + n
            seconds[route] = seconds.get(route, 0.0) + result["route_seconds"][route]
        if result["trace"] is not None:
            trace = (trace or []) + [tuple(t) for t in result["trace"]]
    stats.products_created = loaded.products_created
    summary = stats.summary()
    summary["route_ms"] = {route: round(1000 * seconds[route] / calls[route], 2) for route in calls}
    summary["route_calls"] = calls
    if trace is not None:
        summary["trace"] = trace
    summary["load_seconds"] = loaded.seconds
    # The slowest shard's phases (shards run side by side).
    summary["search_wait_seconds"] = max(r["timings"].get("search_wait", 0.0) for r in results)
    summary["shopping_seconds"] = max(r["timings"].get("shopping", 0.0) for r in results)
    summary["shard_shopping_cpu_seconds"] = [
        round(r["timings"].get("shopping_cpu", 0.0), 1) for r in results
    ]
    summary["seconds"] = time.perf_counter() - started
    summary["events_per_second"] = stats.events / max(1e-9, summary["seconds"])
    return summary, user_ids


async def simulate(
    api: Api,
    config: SimConfig,
    admin_email: str,
    admin_password: str,
    *,
    ground_truth_dir: Path | None = None,
    on_progress: Callable[[str, int], None] | None = None,
) -> tuple[Context, dict[str, Any]]:
    """Load the catalog, run every day, write the ground truth; returns context and summary.

    One process, one shard; ``simulation.workers`` runs shards in several processes.
    """
    started = time.perf_counter()
    world = build_world(config)
    loaded = await load_shop(
        api, config, admin_email, admin_password, world=world, on_progress=on_progress
    )
    ctx = await shop(api, config, loaded, world=world, on_progress=on_progress)
    summary, user_ids = merge_results([shard_result(ctx)], loaded, started)
    if ground_truth_dir is not None:
        truth_started = time.perf_counter()
        truth.write_ground_truth(
            ground_truth_dir, world[0], ctx.pop, ctx.queries, loaded.product_ids, user_ids
        )
        summary["truth_seconds"] = time.perf_counter() - truth_started
    summary["requests"] = api.requests
    summary["seconds"] = time.perf_counter() - started
    summary["events_per_second"] = ctx.stats.events / max(1e-9, summary["seconds"])
    return ctx, summary
