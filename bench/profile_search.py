"""CPU per search and per suggest of the serving path, in-process, cold (issue 20).

The same catalog (the synthetic 100k-product shop from ``bench/_synthetic_seed.py``), ranker
(``bench_search_serving.publish_ranker``) and request stream (dev-set queries, Zipf-drawn, as
``bench_search_serving.py`` sends them) as the HTTP benchmark, but called in this process on one
thread with the result cache off: ``search_answers.search`` (engine, rerank, facets, highlights,
the live join and the JSON payload, without HTTP) and ``search_answers.suggest``. What it
prints is process CPU per request, so where a millisecond goes can be found with a profiler
and checked without the noise of a shared machine's HTTP benchmark:

    .venv/bin/python bench/profile_search.py                       # figures only
    .venv/bin/python bench/profile_search.py --profile search      # + cProfile top functions
    .venv/bin/python bench/profile_search.py --stock-writes 20     # sync passes meanwhile

``--stock-writes`` runs the benchmark's stock writer and lets the catalog sync push into the
served index as it does in the server (its CPU is counted: it is the server's too).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _query(path: str):
    """The route's ``SearchQuery`` for one request path of the benchmark."""
    from serving.services.ml.search_answers import SearchQuery

    params = {k: v[-1] for k, v in parse_qs(urlsplit(path).query).items()}
    in_stock = params.get("in_stock")
    return SearchQuery(
        q=params.get("q", ""),
        category=params.get("category"),
        in_stock=None if in_stock is None else in_stock == "true",
        sort=params.get("sort", "relevance"),
        limit=int(params.get("limit", 20)),
    )


def _thread_cpu() -> dict[str, float]:
    """CPU seconds per thread of this process (Python threads by name, others by native id),
    to see what runs beside the request path (sync passes, OpenMP or BLAS pools)."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            fields = (task / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        tid = int(task.name)
        name = names.get(tid) or f"native-{tid}"
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


async def _inline(func, *args, **_):
    """``anyio.to_thread.run_sync`` without the thread (for the profiler)."""
    return func(*args)


async def _wait_ready(serving, deadline_s: float = 900) -> float:
    """Seconds until the served index is built and the published ranker is in use."""
    started = time.monotonic()
    while time.monotonic() - started < deadline_s:
        if serving.served() is not None and serving.ranker_version.startswith("ltr:"):
            return time.monotonic() - started
        await asyncio.sleep(0.5)
    raise RuntimeError("the search index or ranker was not ready in time")


async def _run(args: argparse.Namespace, data_dir: Path, url: str, catalog, texts) -> dict:
    from bench.bench_search_serving import (
        StockWriter,
        diverse_paths,
        suggest_paths,
    )
    from serving.app import create_app
    from serving.components import components_of
    from serving.core.config import Settings
    from serving.services.ml import search_answers
    from serving.services.ml.search_answers import Asker

    settings = Settings(
        data_dir=data_dir,
        database_url=url,
        search_cache_seconds=0,
        rate_limit_enabled=False,
        jwt_secret="x" * 48,
    )
    app = create_app(settings)
    out: dict = {}
    async with app.router.lifespan_context(app):
        c = components_of(app)
        serving = c.search
        assert serving is not None
        ready = await _wait_ready(serving)
        out["ready_s"] = round(ready, 1)
        writer = StockWriter(url, args.products, args.stock_writes)
        if args.stock_writes > 0:
            writer.start()
        asker = Asker(inline=True)
        events = c.search_events if args.events else None
        threaded = search_answers.anyio.to_thread.run_sync
        searches = [_query(p) for p in diverse_paths(catalog, texts, args.n)]
        prefixes = [parse_qs(urlsplit(p).query)["q"][0] for p in suggest_paths(texts, args.n)]

        async def one_search(q):
            await search_answers.search(serving, events, q, asker)

        async def one_suggest(prefix):
            await search_answers.suggest(serving, prefix, 8, inline=True)

        for name, items, call in (
            ("search", searches, one_search),
            ("suggest", prefixes, one_suggest),
        ):
            if args.only and name != args.only:
                continue
            for item in items[: args.warm]:
                await call(item)
            measured = items[args.warm :]
            # CPU time, not wall time: on a busy machine wall time charges other processes'
            # time slices to whatever function was running.
            profiler = cProfile.Profile(time.thread_time) if args.profile == name else None
            if profiler:
                # cProfile sees one thread: run the worker-thread part inline meanwhile.
                search_answers.anyio.to_thread.run_sync = _inline
            threads = _thread_cpu()
            cpu, wall = time.process_time(), time.perf_counter()
            if profiler:
                profiler.enable()
            for item in measured:
                await call(item)
            if profiler:
                profiler.disable()
                search_answers.anyio.to_thread.run_sync = threaded
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            out[name] = {
                "requests": len(measured),
                "cpu_ms_per_request": round(1000 * cpu / len(measured), 3),
                "wall_ms_per_request": round(1000 * wall / len(measured), 3),
            }
            after = _thread_cpu()
            out[name]["threads_cpu_ms_per_request"] = {
                t: round(1000 * (after[t] - threads.get(t, 0.0)) / len(measured), 3)
                for t in after
                if after[t] - threads.get(t, 0.0) > 0.0005 * len(measured)
            }
            print(f"{name}: {out[name]}", flush=True)
            if profiler:
                stats = pstats.Stats(profiler).strip_dirs().sort_stats(args.sort)
                stats.print_stats(args.top)
        writer.stop.set()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--n", type=int, default=3000, help="requests per endpoint")
    parser.add_argument("--warm", type=int, default=300, help="unmeasured requests first")
    parser.add_argument("--queries", choices=("auto", "dev", "zipf"), default="auto")
    parser.add_argument("--profile", choices=("search", "suggest"), default=None)
    parser.add_argument("--only", choices=("search", "suggest"), default=None)
    parser.add_argument("--sort", default="cumulative")
    parser.add_argument("--top", type=int, default=60)
    parser.add_argument("--stock-writes", type=float, default=0.0)
    parser.add_argument(
        "--events", action="store_true", help="log the server's own search events, as the route"
    )
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="keep the shop here and reuse it next time"
    )
    args = parser.parse_args()

    from bench._synthetic_seed import seeded_sqlite
    from bench.bench_search_serving import publish_ranker, query_set
    from simulation.catalog import generate_catalog

    keep = args.data_dir
    tmp = None if keep else tempfile.mkdtemp(prefix="profile-search-")
    data_dir = Path(keep or tmp)
    database = data_dir / "bench.db"
    fresh = not database.exists()
    data_dir.mkdir(parents=True, exist_ok=True)
    if fresh:
        seeded_sqlite(database, args.products, args.seed)
        publish_ranker(data_dir)
    catalog = generate_catalog(args.seed, args.products)
    described, texts = query_set(catalog, args.queries)
    print(f"queries: {described}, {len(texts)} distinct; load {os.getloadavg()[0]:.2f}")
    try:
        asyncio.run(_run(args, data_dir, f"sqlite:///{database}", catalog, texts))
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
