"""CPU per request of the simulated shoppers, by route: where a simulation's CPU goes.

One worker, one shopper at a time, so the process CPU spent between sending a request and
reading its answer belongs to that request (client and in-process server together, plus
whatever background threads did meanwhile: a few percent). Wall-clock latencies under
concurrency (``bench_simulate.py``) mostly measure queueing; this measures cost. Prints a table
and writes bench/results/simulate_route_cpu.json.

    .venv/bin/python bench/profile_simulate.py                   # 300 users, 5,000 products, 8 days
    .venv/bin/py-spy record --gil -o profile.svg -- .venv/bin/python bench/profile_simulate.py
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "simulate_route_cpu.json"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--products", type=int, default=5000)
    parser.add_argument("--days", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    from serving.core.config import Settings
    from serving.inprocess import LocalShop
    from simulation import client
    from simulation.context import SimConfig
    from simulation.workers import run_inprocess

    cpu: Counter[str] = Counter()
    calls: Counter[str] = Counter()
    plain_call = client.Api.call

    async def timed_call(self, method, path, **kwargs):
        started = time.process_time()
        try:
            return await plain_call(self, method, path, **kwargs)
        finally:
            route = f"{method} {client._DIGITS.sub('{id}', path)}"
            cpu[route] += time.process_time() - started
            calls[route] += 1

    client.Api.call = timed_call  # this process only; workers=1 keeps every request here
    load_before = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="profile-simulate-") as tmp:
        settings = Settings(data_dir=Path(tmp), jwt_secret_value="p" * 48, database_url=None)
        config = SimConfig(
            seed=args.seed, users=args.users, products=args.products, days=args.days, concurrency=1
        )
        started = time.process_time()
        summary = run_inprocess(
            LocalShop(settings), config, workers=1, ground_truth_dir=None, progress=False
        )
        total = time.process_time() - started
    visits = summary["sessions"]
    shopping = {r: c for r, c in cpu.items() if r not in SETUP_ROUTES}
    in_shopping = sum(shopping.values())
    rows = sorted(shopping, key=lambda r: -shopping[r])
    print(f"{visits:,} visits, {summary['requests']:,} requests, process CPU {total:.1f} s")
    print(f"{'route':42s} {'calls':>7s} {'ms/call':>8s} {'ms/visit':>9s} {'share':>6s}")
    for route in rows:
        ms = 1000 * shopping[route]
        print(
            f"{route:42s} {calls[route]:7d} {ms / calls[route]:8.2f} {ms / visits:9.2f} "
            f"{shopping[route] / in_shopping:6.1%}"
        )
    print(f"{'all shopping requests':42s} {'':7s} {'':8s} {1000 * in_shopping / visits:9.2f}")
    result = {
        "bench": "profile_simulate",
        "config": vars(args) | {"out": str(args.out)},
        "visits": visits,
        "process_cpu_seconds": round(total, 1),
        "shopping_request_cpu_ms_per_visit": round(1000 * in_shopping / visits, 2),
        "routes": {
            r: {
                "calls": calls[r],
                "cpu_ms_per_call": round(1000 * shopping[r] / calls[r], 3),
                "cpu_ms_per_visit": round(1000 * shopping[r] / visits, 3),
            }
            for r in rows
        },
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_before": load_before,
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    return 0


#: Requests of the loading phase, not of shoppers (the admin's sign-ins, the catalog page it
#: reads first and the nightly restocks are a handful of calls among thousands).
SETUP_ROUTES = frozenset(
    {
        "GET /api/v1/categories",
        "POST /api/v1/categories",
        "POST /api/v1/products/bulk",
        "POST /api/v1/products",
    }
)


if __name__ == "__main__":
    sys.exit(main())
