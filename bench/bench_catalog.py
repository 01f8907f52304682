"""Product reads against a real uvicorn worker: single product and a filtered listing.

Target (issue "Foundation"): ≥ 3,000 req/s per worker with p99 < 20 ms on 2 cores, 10k products.
Load comes from wrk (Debian package) in a separate process; latency percentiles are wrk's.

    python bench/bench_catalog.py [--products 10000] [--duration 10] [--connections 32]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._server import running_server, seed_catalog, write_result  # noqa: E402

LUA_RANDOM_PRODUCT = """
math.randomseed(42)
request = function()
  return wrk.format("GET", "/api/v1/products/" .. math.random(1, {n}))
end
"""

LUA_LATENCY = """
done = function(summary, latency, requests)
  io.write(string.format("P50=%f\\nP99=%f\\nRPS=%f\\nERR=%d\\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests / (summary.duration / 1e6),
    summary.errors.status + summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout))
end
"""


def run_wrk(url: str, *, script: str | None, duration: int, connections: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write((script or "") + LUA_LATENCY)
        script_path = fh.name
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "-s", script_path, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    figures = dict(re.findall(r"^(P50|P99|RPS|ERR)=([\d.]+)$", out, re.M))
    return {
        "requests_per_s": round(float(figures["RPS"]), 1),
        "p50_ms": round(float(figures["P50"]), 2),
        "p99_ms": round(float(figures["P99"]), 2),
        "errors": int(float(figures["ERR"])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        url = args.database_url or f"sqlite:///{data_dir / 'bench.db'}"
        seed_catalog(url, args.products)
        results = {}
        # Catalog reads only: no search index build competing for the two cores meanwhile.
        quiet = {
            "STORELOOP_SEARCH_BUILD_ON_START": "false",
            "STORELOOP_CATALOG_SYNC_SECONDS": "3600",
            # e.g. BENCH_ENV="STORELOOP_LIVE_DATA_SECONDS=3600" to isolate background loops
            **dict(e.split("=", 1) for e in os.environ.get("BENCH_ENV", "").split() if e),
        }
        with running_server(data_dir, url, extra_env=quiet) as base:
            run_wrk(base + "/api/v1/products/1", script=None, duration=2, connections=8)  # warm-up
            results["get_product"] = run_wrk(
                base,
                script=LUA_RANDOM_PRODUCT.format(n=args.products),
                duration=args.duration,
                connections=args.connections,
            )
            results["filtered_listing"] = run_wrk(
                base
                + "/api/v1/products?category=top1&attr=color:red&in_stock=true"
                + "&sort=price_asc&limit=24",
                script=None,
                duration=args.duration,
                connections=args.connections,
            )
    for name, r in results.items():
        print(
            f"{name:18s} {r['requests_per_s']:8.0f} req/s  p50 {r['p50_ms']:6.2f} ms  "
            f"p99 {r['p99_ms']:6.2f} ms  errors {r['errors']}"
        )
    backend = "postgresql" if args.database_url else "sqlite"
    path = write_result(
        f"catalog_{backend}",
        {
            "products": args.products,
            "workers": 1,
            "connections": args.connections,
            "duration_s": args.duration,
            **results,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
