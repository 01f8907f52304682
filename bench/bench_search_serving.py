"""Search and suggest through HTTP against one uvicorn worker (issues 8 and 20).

Targets (issue 20): 100,000 products, a realistic diverse query stream, the result cache off
(``--cold``): <= 1.5 ms of server CPU per search including facets, highlights and the rerank
of the top 200; p99 < 20 ms at 500 req/s while stock changes (``--stock-writes 20``); suggest
p99 < 5 ms at 1,000 req/s. Each figure is reported beside a bare FastAPI JSON endpoint
(``bench/_bare_app.py``) measured in the same run at the same rate, as a ratio.

Set-up, chosen to look like the shop rather than like a stress test of one code path:

* catalog: the demo's synthetic catalog (simulation, 35 leaf categories, real
  brands, attributes and title nouns) imported through the bulk-import domain code into
  SQLite; the server builds its index from it at start-up, as a fresh shop does;
* ranker: a ``HistGradientBoostingRegressor`` with the production hyperparameters (100 trees,
  15 leaves, the LTR features) published to the registry with its gate passed, so every
  relevance search reranks its top 200; it is fitted on synthetic features because only its
  cost matters here (docs/search.md has the quality figures);
* queries (``--queries``): ``dev`` is the 3,537 distinct real shopper queries of
  ``../shared/data/search-dev/judgments-dev.csv`` (a hardware store's: many match little in
  this catalog, which is what a long tail looks like), ``zipf`` thousands of distinct queries
  cut from the catalog's own titles and brands (1-3 words, 5 % with a typo) and ``shoppers``
  the synthetic shoppers' own query set (~1,800 distinct requests, the issue-8 figures);
  ``auto`` is ``dev`` when the file is present, else ``zipf``. Requests draw queries by a
  Zipf law over a shuffled rank (s = 1), so a few repeat often and most are rare; 12 % are
  category pages (no text, a category slug, as ``/c/<slug>`` asks), 8 % add ``in_stock``,
  5 % sort by price. Suggest requests are the prefixes (2+ characters) a browser sends while
  those queries are typed.

Each endpoint is measured twice: with the open-loop client at a fixed rate (the latency
target is stated at a rate; latencies count from each request's scheduled send time), then
with wrk at saturation (16 connections: the throughput ceiling). Server CPU per request comes
from /proc, the load average is recorded beside every figure. ``--cold`` turns the per-query
result cache off (STORELOOP_SEARCH_CACHE_SECONDS=0) to measure the first-computation path;
``--stock-writes N`` adjusts the stock of N random products per second meanwhile, as orders
and deliveries do in a busy shop, so the catalog sync writes into the served index every
pass.

    python bench/bench_search_serving.py [--products 100000] [--rate 500] [--suggest-rate 1000]
                                         [--duration 15] [--cold] [--stock-writes 20]
                                         [--queries auto|dev|zipf|shoppers] [--no-suggest]
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import re
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
from bench._server import bare_server, running_server, write_result  # noqa: E402
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


DEV_JUDGMENTS = Path(__file__).resolve().parents[2] / "shared/data/search-dev/judgments-dev.csv"
_WORD = re.compile(r"[a-z]{3,}")


def dev_queries(path: Path) -> list[str]:
    """The distinct queries of a judgments file (``query,product_id,grade``), file order."""
    with path.open(newline="", encoding="utf-8") as fh:
        return list(dict.fromkeys(row["query"] for row in csv.DictReader(fh) if row["query"]))


def zipf_queries(catalog, n: int, seed: int = 13) -> list[str]:
    """``n`` distinct queries cut from the catalog's titles: a random product's 1-3 word span,
    sometimes with its brand, 5 % with one letter dropped (a typo)."""
    rng = random.Random(seed)
    out: dict[str, None] = {}
    while len(out) < n:
        i = rng.randrange(len(catalog))
        words = _WORD.findall(catalog.titles[i].lower())
        if not words:
            continue
        size = min(len(words), rng.choices((1, 2, 3), weights=(45, 40, 15))[0])
        start = rng.randrange(len(words) - size + 1)
        query = words[start : start + size]
        if rng.random() < 0.15:
            query.insert(0, catalog.brands[int(catalog.brand[i])].lower())
        if rng.random() < 0.05:
            w = rng.randrange(len(query))
            if len(query[w]) > 4:
                cut = rng.randrange(1, len(query[w]) - 1)
                query[w] = query[w][:cut] + query[w][cut + 1 :]
        out[" ".join(query)] = None
    return list(out)


def diverse_paths(catalog, queries: list[str], n: int, seed: int = 11) -> list[str]:
    """``n`` request paths over ``queries`` (Zipf over a shuffled rank) and category pages."""
    rng = random.Random(seed)
    order = list(queries)
    rng.shuffle(order)
    weights = [1.0 / (rank + 1) for rank in range(len(order))]
    slugs = [c.slug for c in catalog.categories]
    paths = []
    for _ in range(n):
        roll = rng.random()
        if roll < 0.12:
            params: dict[str, object] = {"category": rng.choice(slugs), "limit": 20}
        else:
            params = {"q": rng.choices(order, weights=weights)[0], "limit": 20}
            if roll < 0.20:
                params["in_stock"] = "true"
            elif roll < 0.25:
                params["sort"] = "price_asc"
        paths.append("/api/v1/search?" + urlencode(params))
    return paths


def shopper_paths(catalog, n: int, seed: int = 11) -> list[str]:
    """``n`` search request paths drawn like the synthetic shoppers draw their queries
    (``--queries shoppers``: the issue-8 set-up, ~1,800 distinct requests)."""
    from simulation.queries import generate_queries

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


def suggest_paths(texts: list[str], n: int, seed: int = 12) -> list[str]:
    """Prefixes of ``texts`` as they are typed, two characters or more."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        text = rng.choice(texts)
        cut = rng.randint(min(2, len(text)), len(text))
        out.append("/api/v1/search/suggest?" + urlencode({"q": text[:cut]}))
    return out


def ranker_model():
    """A production-sized ranker model (see the module docstring): 100 trees × 15 leaves."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    from features.search_features import FEATURE_NAMES

    rng = np.random.default_rng(0)
    x = rng.random((5000, len(FEATURE_NAMES)))
    y = np.sin(x @ rng.random(len(FEATURE_NAMES)) * 5) + rng.normal(0, 0.1, len(x))
    # Same hyperparameters as ltr.train_ranker; early stopping off so all 100 trees exist.
    return HistGradientBoostingRegressor(
        max_iter=100,
        learning_rate=0.1,
        max_leaf_nodes=15,
        min_samples_leaf=10,
        random_state=0,
        early_stopping=False,
    ).fit(x, y)


def publish_ranker(data_dir: Path) -> str:
    """``ranker_model``, published with its gate passed."""
    from models.search.index_store import IndexStore
    from models.search.ltr import Ranker

    store = IndexStore(data_dir / "registry" / "search_ranker")
    directory = store.new_version_dir()
    metrics = {"gate_passed": True, "benchmark": "synthetic"}
    Ranker(model=ranker_model(), metrics=metrics).save(directory)
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
        from serving.services.shop.inventory import adjust_on_hand

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


def query_set(catalog, source: str) -> tuple[str, list[str]]:
    """(what the queries are, their texts) for ``--queries``."""
    if source == "auto":
        source = "dev" if DEV_JUDGMENTS.exists() else "zipf"
    if source == "dev":
        return f"dev set ({DEV_JUDGMENTS.name})", dev_queries(DEV_JUDGMENTS)
    if source == "zipf":
        return "zipf over catalog titles", zipf_queries(catalog, 5000)
    from simulation.queries import generate_queries

    return "synthetic shoppers", list(generate_queries(catalog, catalog.seed).text)


def measure_bare(rate: float, duration: int, connections: int) -> dict:
    """The bare FastAPI endpoint at the same rate and with the same wrk settings."""
    with bare_server() as base:
        paths = [f"/json?q=q{i % 5000}&limit=20" for i in range(int(rate * (duration + 8)))]
        return measure(base, paths, rate, duration, connections, warm=5)


def ratios(result: dict, bare: dict) -> dict:
    """Search (or suggest) figures divided by the bare endpoint's of the same run."""
    o, b = result["open_loop"], bare["open_loop"]
    w, bw = result["wrk"], bare["wrk"]
    return {
        "cpu_per_request": round(
            o["server_cpu_ms_per_request"] / max(b["server_cpu_ms_per_request"], 1e-9), 2
        ),
        "p99": round(o["p99_ms"] / max(b["p99_ms"], 1e-9), 2),
        "wrk_throughput": round(w["requests_per_s"] / max(bw["requests_per_s"], 1e-9), 3),
    }


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
    parser.add_argument("--queries", choices=("auto", "dev", "zipf", "shoppers"), default="auto")
    parser.add_argument("--no-suggest", action="store_true", help="measure search only")
    parser.add_argument("--name", default=None, help="results file name (bench/results)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is needed: apt-get install wrk", file=sys.stderr)
        sys.exit(2)
    if args.queries == "dev" and not DEV_JUDGMENTS.exists():
        print(f"--queries dev needs {DEV_JUDGMENTS}", file=sys.stderr)
        sys.exit(2)
    n_search = int(args.rate * (args.warm + args.duration + 3))
    bare = measure_bare(args.rate, args.duration, args.connections)  # the same-run baseline
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        database = data_dir / "bench.db"
        t0 = time.monotonic()
        catalog = seeded_sqlite(database, args.products, args.seed)
        seed_s = time.monotonic() - t0
        described, texts = query_set(catalog, args.queries)
        if args.queries == "shoppers":
            paths = shopper_paths(catalog, n_search)
        else:
            paths = diverse_paths(catalog, texts, n_search)
        ranker = publish_ranker(data_dir)
        extra = {"STORELOOP_SEARCH_CACHE_SECONDS": "0"} if args.cold else {}
        url = f"sqlite:///{database}"
        with running_server(data_dir, url, extra_env=extra) as base:
            ready_s = wait_ready(base, ranker)
            writer = StockWriter(url, args.products, args.stock_writes)
            if args.stock_writes > 0:
                writer.start()
            search = measure(base, paths, args.rate, args.duration, args.connections, args.warm)
            suggest = None
            if not args.no_suggest:
                n = int(args.suggest_rate * (args.warm + args.duration + 3))
                suggest = measure(
                    base,
                    suggest_paths(texts, n),
                    args.suggest_rate,
                    args.duration,
                    args.connections,
                    args.warm,
                )
            writer.stop.set()
    search["vs_bare"] = ratios(search, bare)
    print(f"catalog ready in {seed_s:.0f} s; server built and loaded its index in {ready_s:.1f} s")
    print(f"queries: {described}, {len(texts)} distinct; {search['distinct_requests']} requests")
    print(_line("bare", bare))
    print(_line("search", search), "| vs bare:", search["vs_bare"])
    if suggest is not None:
        bare_suggest = measure_bare(args.suggest_rate, args.duration, args.connections)
        suggest["vs_bare"] = ratios(suggest, bare_suggest)
        suggest["bare"] = bare_suggest
        print(_line("bare", bare_suggest))
        print(_line("suggest", suggest), "| vs bare:", suggest["vs_bare"])
    name = args.name or (
        "search_serving"
        + ("_cold" if args.cold else "")
        + ("_busy" if args.stock_writes > 0 else "")
        + ("" if args.queries == "shoppers" else "_diverse")
    )
    path = write_result(
        name,
        {
            "products": args.products,
            "catalog": f"simulation seed {args.seed}",
            "queries": described,
            "distinct_queries": len(texts),
            "workers": 1,
            "result_cache": not args.cold,
            "stock_writes_per_s": args.stock_writes,
            "ranker": "HistGradientBoostingRegressor 100 trees x 15 leaves, rerank depth 200",
            "index_ready_seconds": round(ready_s, 1),
            "bare_fastapi": bare,
            "search": search,
            "suggest": suggest,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
