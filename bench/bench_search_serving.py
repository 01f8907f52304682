"""Search and suggest through HTTP against one uvicorn worker (issue 8's serving figures).

Target: 100,000 products, search p99 < 20 ms including facets and the learned rerank at
≥ 500 req/s per worker; suggest p99 < 5 ms.

Set-up, chosen to look like the shop rather than like a stress test of one code path:

* catalog: the demo's synthetic catalog (storefront/synthetic, 35 leaf categories, real
  brands, attributes and title nouns) imported through the bulk-import domain code into
  SQLite; the server builds its index from it at start-up, as a fresh shop does;
* ranker: a ``HistGradientBoostingRegressor`` with the production hyperparameters (100 trees,
  15 leaves, the 17 LTR features) published to the registry with its gate passed, so every
  relevance search reranks its top 200; it is fitted on synthetic features because only its
  cost matters here (docs/search.md has the quality figures);
* requests: the synthetic shoppers' query set (nouns, synonyms, brand + noun, attribute +
  noun, typos, cut-off words, 4 % zero-result queries), leaves weighted by their share of the
  catalog; 20 % of searches add a filter or sort as a facet click would. Suggest requests
  are the prefixes (2+ characters) a browser sends while those queries are typed.

Each endpoint is measured twice: with the open-loop client at a fixed rate (the latency
target is stated at a rate; latencies count from each request's scheduled send time), then
with wrk at saturation (16 connections: the throughput ceiling). Server CPU per request comes
from /proc, the load average is recorded beside every figure. ``--cold`` turns the per-query
result cache off (STORELOOP_SEARCH_CACHE_SECONDS=0) to measure the first-computation path;
``--stock-writes N`` adjusts the stock of N random products per second meanwhile, as orders
and deliveries do in a busy shop, so the catalog sync rewrites the served index every pass
and cached answers live only ``search_cache_seconds`` (the quiet default keeps them while
the index is unchanged).

    python bench/bench_search_serving.py [--products 100000] [--rate 500] [--suggest-rate 1000]
                                         [--duration 15] [--cold] [--stock-writes 20]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from contextlib import suppress
from pathlib import Path
from urllib.parse import urlencode

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._open_loop import run_open_loop  # noqa: E402
from bench._server import running_server, write_result  # noqa: E402
from bench._synthetic_seed import seeded_sqlite  # noqa: E402
from bench.bench_catalog import run_wrk  # noqa: E402
from bench.bench_recs_serving import server_cpu_seconds  # noqa: E402

LUA_PATHS = """
math.randomseed(7)
local paths = {%s}
request = function()
  return wrk.format("GET", paths[math.random(1, #paths)])
end
"""


def search_paths(catalog, n: int, seed: int = 11) -> list[str]:
    """``n`` search request paths drawn like the synthetic shoppers draw their queries."""
    from storefront.synthetic.queries import generate_queries

    queries = generate_queries(catalog, catalog.seed)
    rng = random.Random(seed)
    leaves = sorted(queries.by_leaf)
    sizes = [len(catalog.products_in_leaf(leaf)) for leaf in leaves]
    zero = [i for i, kind in enumerate(queries.kind) if kind == "zero"]
    paths = []
    for _ in range(n):
        if rng.random() < 0.04:
            q = rng.choice(zero)
            leaf = -1
        else:
            leaf = rng.choices(leaves, weights=sizes)[0]
            q = rng.choice(queries.by_leaf[leaf])
        params: dict[str, object] = {"q": queries.text[q], "limit": 20}
        roll = rng.random()
        if roll < 0.10:
            params["in_stock"] = "true"
        elif roll < 0.15:
            params["sort"] = "price_asc"
        elif roll < 0.20 and leaf >= 0:
            product = int(rng.choice(catalog.products_in_leaf(leaf)))
            params["brand"] = catalog.brands[int(catalog.brand[product])]
        paths.append("/api/v1/search?" + urlencode(params))
    return paths


def suggest_paths(catalog, n: int, seed: int = 12) -> list[str]:
    """Prefixes of the shoppers' queries as they are typed, two characters or more."""
    from storefront.synthetic.queries import generate_queries

    texts = generate_queries(catalog, catalog.seed).text
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        text = rng.choice(texts)
        cut = rng.randint(min(2, len(text)), len(text))
        out.append("/api/v1/search/suggest?" + urlencode({"q": text[:cut]}))
    return out


def publish_ranker(data_dir: Path) -> str:
    """A production-sized ranker (see the module docstring), published with its gate passed."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    from features.search_features import FEATURE_NAMES
    from models.search.index_store import IndexStore
    from models.search.ltr import Ranker

    rng = np.random.default_rng(0)
    x = rng.random((5000, len(FEATURE_NAMES)))
    y = np.sin(x @ rng.random(len(FEATURE_NAMES)) * 5) + rng.normal(0, 0.1, len(x))
    # Same hyperparameters as ltr.train_ranker; early stopping off so all 100 trees exist.
    model = HistGradientBoostingRegressor(
        max_iter=100,
        learning_rate=0.1,
        max_leaf_nodes=15,
        min_samples_leaf=10,
        random_state=0,
        early_stopping=False,
    ).fit(x, y)
    store = IndexStore(data_dir / "registry" / "search_ranker")
    directory = store.new_version_dir()
    Ranker(model=model, metrics={"gate_passed": True, "benchmark": "synthetic"}).save(directory)
    store.publish(directory.name)
    return directory.name


class StockWriter(threading.Thread):
    """Stock adjustments at a steady rate through the inventory service, in this process: the
    server only sees the database change, as with any other writer."""

    def __init__(self, database_url: str, products: int, rate: float) -> None:
        super().__init__(name="stock-writer", daemon=True)
        self.url, self.products, self.rate = database_url, products, rate
        self.stop = threading.Event()
        self.written = 0

    def run(self) -> None:
        from serving.core.errors import Conflict
        from serving.db.engine import Database
        from serving.services.inventory import adjust_on_hand

        db = Database(self.url)
        rng = random.Random(5)
        started = time.monotonic()
        try:
            while not self.stop.is_set():
                # Conflict: nothing left to take away, fine for a benchmark.
                with db.write_gate(), db.session(write=True) as session, suppress(Conflict):
                    adjust_on_hand(
                        session,
                        product_id=rng.randint(1, self.products),
                        delta=rng.choice((-1, 1)),
                        reason="bench",
                        actor_user_id=None,
                    )
                self.written += 1
                self.stop.wait(max(0.0, started + self.written / self.rate - time.monotonic()))
        finally:
            db.dispose()


def wait_ready(base: str, ranker: str, deadline_s: float = 900) -> float:
    """Seconds until the server answers from its own index with the published ranker."""
    started = time.monotonic()
    while time.monotonic() - started < deadline_s:
        body = httpx.get(base + "/api/v1/search", params={"q": "headphones"}, timeout=30).json()
        if body.get("ranker_version") == f"ltr:{ranker}" and body.get("total", 0) > 0:
            return time.monotonic() - started
        time.sleep(0.5)
    raise RuntimeError("the search index or ranker was not ready in time")


def measure(
    base: str, paths: list[str], rate: float, duration: int, connections: int, warm: int
) -> dict:
    """Open loop at ``rate`` (after ``warm`` seconds of the same traffic), then wrk.

    The request sequence runs on from the warm-up into the measured part, so the per-query
    caches are in the state of a server that has been taking this traffic for a while (the
    default 30 s is one cache lifetime). Both phases report server CPU per request and the
    load average when they started.
    """
    offset = int(rate * warm)

    def make_request(i: int):
        return ("GET", paths[(offset + i) % len(paths)], {}, b"")

    run_open_loop(
        base, lambda i: ("GET", paths[i % len(paths)], {}, b""), rate=rate, seconds=warm, warmup=0
    )
    load = os.getloadavg()
    cpu, started = server_cpu_seconds(base), time.monotonic()
    at_rate = run_open_loop(base, make_request, rate=rate, seconds=duration, warmup=3)
    rate_cpu, wall = server_cpu_seconds(base) - cpu, time.monotonic() - started
    at_rate["load_average"] = [round(v, 2) for v in load]
    # Over the phase's real length: an overloaded server is still answering after the
    # last scheduled send.
    at_rate["server_cores_used"] = round(rate_cpu / wall, 3)
    sent = at_rate["target_rate"] * (duration + 3)
    at_rate["server_cpu_ms_per_request"] = round(1000 * rate_cpu / sent, 3)
    script = LUA_PATHS % ", ".join(f'"{p}"' for p in paths)
    load = os.getloadavg()
    cpu = server_cpu_seconds(base)
    wrk = run_wrk(base, script=script, duration=duration, connections=connections)
    wrk_cpu = server_cpu_seconds(base) - cpu
    wrk["load_average"] = [round(v, 2) for v in load]
    wrk["server_cpu_ms_per_request"] = round(1000 * wrk_cpu / (wrk["requests_per_s"] * duration), 3)
    return {"open_loop": at_rate, "wrk": wrk, "distinct_requests": len(set(paths))}


def _line(name: str, r: dict) -> str:
    w, o = r["wrk"], r["open_loop"]
    return (
        f"{name:8s} open loop {o['target_rate']:.0f}/s: achieved {o['achieved_rate']:.0f}, "
        f"p50 {o['p50_ms']:.2f} p90 {o['p90_ms']:.2f} p99 {o['p99_ms']:.2f} "
        f"p99.9 {o['p999_ms']:.2f} ms, codes {o['status_codes']}, errors {o['errors']}, "
        f"late starts {o['late_starts']}, {o['server_cpu_ms_per_request']:.3f} ms CPU/req, "
        f"{o['server_cores_used']:.2f} cores (load {o['load_average'][0]:.1f}) | "
        f"wrk {w['requests_per_s']:.0f} req/s p50 {w['p50_ms']:.2f} p99 {w['p99_ms']:.2f} ms, "
        f"{w['server_cpu_ms_per_request']:.3f} ms CPU/req (load {w['load_average'][0]:.1f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rate", type=float, default=500.0, help="search open-loop rate")
    parser.add_argument("--suggest-rate", type=float, default=1000.0)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--warm", type=int, default=30, help="seconds of warm-up per endpoint")
    parser.add_argument("--cold", action="store_true", help="per-query result cache off")
    parser.add_argument(
        "--stock-writes", type=float, default=0.0, help="stock adjustments per second meanwhile"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        database = data_dir / "bench.db"
        t0 = time.monotonic()
        catalog = seeded_sqlite(database, args.products, args.seed)
        seed_s = time.monotonic() - t0
        ranker = publish_ranker(data_dir)
        extra = {"STORELOOP_SEARCH_CACHE_SECONDS": "0"} if args.cold else {}
        url = f"sqlite:///{database}"
        with running_server(data_dir, url, extra_env=extra) as base:
            ready_s = wait_ready(base, ranker)
            writer = StockWriter(url, args.products, args.stock_writes)
            if args.stock_writes > 0:
                writer.start()
            # Enough requests that the sequence never repeats within a run.
            search = measure(
                base,
                search_paths(catalog, int(args.rate * (args.warm + args.duration + 3))),
                args.rate,
                args.duration,
                args.connections,
                args.warm,
            )
            suggest = measure(
                base,
                suggest_paths(catalog, int(args.suggest_rate * (args.warm + args.duration + 3))),
                args.suggest_rate,
                args.duration,
                args.connections,
                args.warm,
            )
            writer.stop.set()
    print(f"catalog ready in {seed_s:.0f} s; server built and loaded its index in {ready_s:.1f} s")
    print(_line("search", search))
    print(_line("suggest", suggest))
    name = (
        "search_serving"
        + ("_cold" if args.cold else "")
        + ("_busy" if args.stock_writes > 0 else "")
    )
    path = write_result(
        name,
        {
            "products": args.products,
            "catalog": f"storefront.synthetic seed {args.seed}",
            "workers": 1,
            "result_cache": not args.cold,
            "stock_writes_per_s": args.stock_writes,
            "ranker": "HistGradientBoostingRegressor 100 trees x 15 leaves, rerank depth 200",
            "index_ready_seconds": round(ready_s, 1),
            "search": search,
            "suggest": suggest,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
