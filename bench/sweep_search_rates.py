"""Server CPU per cold search at several request rates, beside the bare endpoint's (issue 20).

``bench_search_serving.py`` measures at one rate (500/s) where one worker is overloaded by cold
searches, so its CPU per request could include what overload costs: two compute threads and
the event loop handing the GIL to each other. This sweep asks whether it does: the same
catalog (100k synthetic products), ranker and diverse query stream (the dev set's queries when
present, else Zipf-drawn catalog words), the result cache off, an open loop at each rate in
turn (15 s each, after 10 s of warm-up at the lowest), and the bare FastAPI JSON endpoint at
the same rates in the same run. If CPU per search falls or stays flat as the rate drops, the
cost is the work itself, not contention.

    .venv/bin/python bench/sweep_search_rates.py [--rates 25 100 200] [--products 100000]

Writes ``bench/results/search_rate_sweep.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._open_loop import run_open_loop  # noqa: E402
from bench._server import bare_server, running_server, write_result  # noqa: E402
from bench._synthetic_seed import seeded_sqlite  # noqa: E402
from bench.bench_recs_serving import server_cpu_seconds  # noqa: E402
from bench.bench_search_serving import (  # noqa: E402
    diverse_paths,
    publish_ranker,
    query_set,
    wait_ready,
)

PHASE_SECONDS = 15


def sweep(base: str, paths: list[str], rates: list[float]) -> list[dict]:
    """CPU per request, p50 and p99 at each open-loop rate, in the order given."""
    run_open_loop(
        base, lambda i: ("GET", paths[i % len(paths)], {}, b""), rate=min(rates), seconds=10
    )
    offset, rows = 0, []
    for rate in rates:
        cpu, started = server_cpu_seconds(base), time.monotonic()
        result = run_open_loop(
            base,
            lambda i, o=offset: ("GET", paths[(o + i) % len(paths)], {}, b""),
            rate=rate,
            seconds=PHASE_SECONDS,
            warmup=0,
        )
        used, wall = server_cpu_seconds(base) - cpu, time.monotonic() - started
        sent = rate * PHASE_SECONDS
        offset += int(sent)
        rows.append(
            {
                "rate": rate,
                "server_cpu_ms_per_request": round(1000 * used / sent, 3),
                "server_cores_used": round(used / wall, 3),
                "p50_ms": round(result["p50_ms"], 2),
                "p99_ms": round(result["p99_ms"], 2),
                "load_average": round(os.getloadavg()[0], 2),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[25.0, 100.0, 200.0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--queries", choices=("auto", "dev", "zipf"), default="auto")
    args = parser.parse_args()
    if any(r <= 0 for r in args.rates):
        parser.error("--rates must be positive")
    with bare_server() as bare_base:
        bare_paths = [f"/json?q=q{i % 5000}&limit=20" for i in range(60_000)]
        bare = sweep(bare_base, bare_paths, args.rates)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        catalog = seeded_sqlite(data_dir / "bench.db", args.products, 7)
        described, texts = query_set(catalog, args.queries)
        paths = diverse_paths(catalog, texts, 60_000)
        ranker = publish_ranker(data_dir)
        cold = {"STORELOOP_SEARCH_CACHE_SECONDS": "0"}
        with running_server(data_dir, f"sqlite:///{data_dir / 'bench.db'}", extra_env=cold) as base:
            ready = wait_ready(base, ranker)
            search = sweep(base, paths, args.rates)
    for s, b in zip(search, bare, strict=True):
        s["vs_bare_cpu"] = round(s["server_cpu_ms_per_request"] / b["server_cpu_ms_per_request"], 2)
        print(
            f"{s['rate']:>6.0f}/s  search {s['server_cpu_ms_per_request']:.2f} ms CPU "
            f"(p50 {s['p50_ms']:.1f} p99 {s['p99_ms']:.1f} ms, {s['server_cores_used']:.2f} cores)"
            f"  bare {b['server_cpu_ms_per_request']:.3f} ms  ratio {s['vs_bare_cpu']:.1f}x"
            f"  load {s['load_average']:.1f}"
        )
    path = write_result(
        "search_rate_sweep",
        {
            "products": args.products,
            "queries": described,
            "result_cache": False,
            "index_ready_seconds": round(ready, 1),
            "phase_seconds": PHASE_SECONDS,
            "search": search,
            "bare_fastapi": bare,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
