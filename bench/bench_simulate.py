"""The default demo history generated in-process: how long it takes and where the time goes.

2,000 users, 5,000 products, 30 simulated days through the real app (in-process ASGI, SQLite,
simulation mode), exactly what ``storeloop simulate --target inprocess`` does. Prints the summary,
events/s and the mean server time per route (measured at the client, sequential-equivalent), and
writes bench/results/simulate.json.

The machine is shared, so wall time depends on what else runs; CPU time much less. Besides
total CPU it records each worker's shopping CPU, and ``two_free_cores_estimate``: the wall time
the run would take with two cores to itself, estimated as the phases outside shopping as
measured (too long under load) plus the busier worker's shopping CPU (too short: a worker also
waits for SQLite's write lock and the day barrier, ~10% of its time in our runs).

    .venv/bin/python bench/bench_simulate.py
    .venv/bin/python bench/bench_simulate.py --users 300 --products 1000 --days 5   # quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "simulate.json"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--products", type=int, default=5000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--concurrency", type=int, default=8, help="shoppers in flight per worker")
    parser.add_argument("--workers", type=int, default=2, help="shard processes (1: no sharding)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    from serving.core.config import Settings
    from serving.inprocess import LocalShop
    from simulation.context import SimConfig
    from simulation.workers import run_inprocess

    with tempfile.TemporaryDirectory(prefix="bench-simulate-") as tmp:
        settings = Settings(data_dir=Path(tmp), jwt_secret_value="b" * 48, database_url=None)
        config = SimConfig(
            seed=args.seed,
            users=args.users,
            products=args.products,
            days=args.days,
            concurrency=args.concurrency,
        )
        load_before = [round(x, 2) for x in os.getloadavg()]
        started = time.perf_counter()
        cpu_started = _cpu_seconds()
        summary = run_inprocess(
            LocalShop(settings),
            config,
            workers=args.workers,
            ground_truth_dir=Path(tmp) / "ground_truth",
            progress=True,
        )
        total = time.perf_counter() - started
        cpu = _cpu_seconds() - cpu_started
    routes = summary.pop("route_ms")
    shard_cpu = summary.get("shard_shopping_cpu_seconds", [])
    serial_cpu = cpu - sum(shard_cpu)  # import, loading, app start-ups, ground truth
    calls = summary.pop("route_calls")
    result = {
        "bench": "simulate",
        "config": vars(args) | {"out": str(args.out)},
        "wall_seconds": round(total, 1),
        "simulate_seconds": round(summary["seconds"], 1),
        "load_seconds": round(summary["load_seconds"], 1),
        "search_wait_seconds": round(summary.get("search_wait_seconds", 0.0), 1),
        "shopping_seconds": round(summary.get("shopping_seconds", 0.0), 1),
        "truth_seconds": round(summary.get("truth_seconds", 0.0), 1),
        "cpu_seconds": round(cpu, 1),
        "shard_shopping_cpu_seconds": shard_cpu,
        "cpu_outside_shopping_seconds": round(serial_cpu, 1),
        "two_free_cores_estimate_seconds": round(
            total - summary.get("shopping_seconds", 0.0) + max(shard_cpu, default=0.0), 1
        ),
        "cpu_ms_per_visit": round(1000 * cpu / max(1, summary["sessions"]), 2),
        "events": summary["events"],
        "events_per_second": round(summary["events"] / total, 1),
        "sessions": summary["sessions"],
        "orders": summary["orders"],
        "requests": summary["requests"],
        "summary": summary,
        "route_ms_at_concurrency": routes,
        "route_calls": calls,
        "route_share_of_time": {
            r: round(routes[r] * calls[r] / max(1e-9, sum(routes[k] * calls[k] for k in calls)), 3)
            for r in calls
        },
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_before": load_before,
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
        "target_seconds": 180,
    }
    print(json.dumps({k: v for k, v in result.items() if k != "summary"}, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str))
    return 0


def _cpu_seconds() -> float:
    """User + system CPU of this process and its (finished) worker processes."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


if __name__ == "__main__":
    sys.exit(main())
