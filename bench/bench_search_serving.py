"""Search and suggest through HTTP against a real uvicorn worker (issue 8's serving figures).

Seeds N products (default 100,000), waits until the server has built and loaded its search
index, then drives ``GET /api/v1/search`` (random queries, facets and live price/stock joined,
default relevance ranking) and ``GET /api/v1/search/suggest`` with wrk from Debian.

    python bench/bench_search_serving.py [--products 100000] [--duration 10] [--connections 16]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._server import running_server, seed_catalog, write_result  # noqa: E402
from bench.bench_catalog import run_wrk  # noqa: E402

QUERIES = ["product", "black", "red product", "blue", "product 12", "white", "green", "prodct"]
PREFIXES = ["pro", "bla", "re", "gre", "whi", "blu"]

LUA_QUERIES = """
math.randomseed(7)
local queries = {%s}
request = function()
  local q = queries[math.random(1, #queries)]
  return wrk.format("GET", "%s" .. q)
end
"""


def _lua(path: str, values: list[str]) -> str:
    quoted = ", ".join('"' + v.replace(" ", "+") + '"' for v in values)
    return LUA_QUERIES % (quoted, path)


def wait_for_index(base: str, deadline_s: float = 600) -> float:
    started = time.monotonic()
    while time.monotonic() - started < deadline_s:
        body = httpx.get(base + "/api/v1/search", params={"q": "product"}, timeout=10).json()
        if body.get("ranker_version") != "fallback" and body.get("total", 0) > 0:
            return time.monotonic() - started
        time.sleep(1)
    raise RuntimeError("the search index was not ready in time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        url = f"sqlite:///{data_dir / 'bench.db'}"
        seed_catalog(url, args.products)
        with running_server(data_dir, url) as base:
            index_ready_s = wait_for_index(base)
            search = run_wrk(
                base,
                script=_lua("/api/v1/search?limit=20&q=", QUERIES),
                duration=args.duration,
                connections=args.connections,
            )
            suggest = run_wrk(
                base,
                script=_lua("/api/v1/search/suggest?q=", PREFIXES),
                duration=args.duration,
                connections=args.connections,
            )
    print(f"index built and loaded by the server in {index_ready_s:.1f} s")
    for name, r in (("search", search), ("suggest", suggest)):
        print(
            f"{name:8s} {r['requests_per_s']:8.0f} req/s  p50 {r['p50_ms']:6.2f} ms  "
            f"p99 {r['p99_ms']:6.2f} ms  errors {r['errors']}"
        )
    path = write_result(
        "search_serving",
        {
            "products": args.products,
            "workers": 1,
            "connections": args.connections,
            "index_ready_seconds": round(index_ready_s, 1),
            "search": search,
            "suggest": suggest,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
