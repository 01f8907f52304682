"""Running a simulation over one or more worker processes, against a URL or in-process apps.

Each worker shops one shard of the users (``runner.shard_owners``) through its own HTTP client:
an ``httpx`` client for a URL, or an ``AsgiClient`` on a fresh app of the ``LocalShop`` the
caller handed in (this package never builds the shop itself: it imports nothing of serving).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from simulation.context import SimConfig
from simulation.inprocess import AsgiClient
from simulation.progress import Progress
from simulation.shop import LocalShop

__all__ = ["ADMIN_EMAIL", "run_inprocess", "run_sharded"]

#: The admin account an in-process run creates (with a fresh password each time).
ADMIN_EMAIL = "simulator-admin@storeloop.local"


def run_inprocess(
    shop: LocalShop,
    config: SimConfig,
    *,
    workers: int = 1,
    ground_truth_dir: Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Prepare ``shop`` (schema, an admin) and drive fresh in-process apps of it.

    The catalog is loaded through one app, then the shoppers run against a fresh one (so its
    search index is built from the loaded catalog); with ``workers > 1`` each worker process
    builds its own in-process app on the same database and event log and runs one shard.
    """
    password = shop.prepare(ADMIN_EMAIL)
    return run_sharded(
        "inprocess",
        shop,
        config,
        ADMIN_EMAIL,
        password,
        workers=workers,
        ground_truth_dir=ground_truth_dir,
        progress=progress,
    )


@contextlib.asynccontextmanager
async def _client(target: str, shop: LocalShop | None, *, loader: bool = False):
    """An httpx client for a URL, or a client for a fresh in-process app of ``shop``.

    In-process requests go through ``AsgiClient``, which calls the ASGI app the way a server
    does, without httpx's client machinery (a large share of the CPU per request otherwise).
    """
    if target != "inprocess":
        import httpx

        async with httpx.AsyncClient(base_url=target, timeout=120.0) as http:
            yield http
        return
    if shop is None:
        raise ValueError("an in-process target needs a shop (simulation.shop.LocalShop)")
    async with shop.app(loader=loader) as app:
        yield AsgiClient(app)


def run_sharded(
    target: str,
    shop: LocalShop | None,
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
    HTTP to ``target``: a URL, or (``"inprocess"``) its own app built from ``shop``, on the same
    database and event log.
    """
    import time
    from dataclasses import replace

    from simulation import truth
    from simulation.client import Api
    from simulation.runner import build_world, load_shop, merge_results

    started = time.perf_counter()
    world = build_world(config)

    async def load(bar: Progress):
        async with _client(target, shop, loader=True) as http:
            api = Api(http)
            loaded = await load_shop(
                api, config, admin_email, admin_password, world=world, on_progress=bar.update
            )
            return loaded, api.requests

    with Progress(config, enabled=progress, world=world) as bar:
        loaded, load_requests = asyncio.run(load(bar))
        if workers <= 1:
            # The shop restocks into its catalog's stock; the ground truth keeps the initial one.
            catalog, pop, queries = world
            own = (replace(catalog, stock=catalog.stock.copy()), pop, queries)
            shard = _run_shard(
                target, shop, config, admin_email, admin_password, loaded, bar.update, own
            )
            results = [asyncio.run(shard)]
        else:
            args = (target, shop, config, admin_email, admin_password, loaded)
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
    workers: int, args: tuple, bar: Progress, world: Any = None
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
    target, shop, config, *rest = args
    procs = [
        spawn.Process(
            target=_shard_main,
            args=(
                target,
                shop,
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
    target, shop, config, email, password, loaded, done, results_q, day_barrier, world=None
) -> None:
    """Worker process: shop one shard and put its result (or its error) on the queue."""
    import traceback

    async def after_day(day: int) -> None:
        await asyncio.to_thread(day_barrier.wait)

    try:
        shard = _run_shard(target, shop, config, email, password, loaded, done, world, after_day)
        result = asyncio.run(shard)
    except BaseException as exc:  # report, then fail the process too
        results_q.put({"shard": config.shard, "error": f"{exc!r}\n{traceback.format_exc()}"})
        raise
    results_q.put(result)


async def _run_shard(
    target, shop, config, email, password, loaded, done, world=None, after_day=None
) -> dict[str, Any]:
    from simulation import runner
    from simulation.client import Api

    def tick(kind: str, n: int) -> None:
        if callable(done):
            done(kind, n)
            return
        with done.get_lock():
            done.value += n

    async with _client(target, shop) as http:
        api = Api(http)
        ctx = await runner.shop(
            api,
            config,
            loaded,
            world=world,
            admin_email=email,
            admin_password=password,
            on_progress=tick,
            after_day=after_day,
        )
        result = runner.shard_result(ctx)
    result["shard"] = config.shard
    result["stats"]["requests"] = api.requests
    return result
