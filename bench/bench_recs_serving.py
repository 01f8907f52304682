"""Recommendations for a user through HTTP: a real uvicorn worker, business rules included.

Target (issue 7): p99 < 10 ms at ≥ 1,000 req/s per worker with 100,000 items × 64 factors.
A synthetic ALS model (random factors, 10 training items per user) is published to the
registry and promoted; the catalog (100,000 products with stock) is seeded into SQLite. Load
comes from wrk (Debian package) in a separate process, signed in as an admin so every request
can ask for a different user; each request pays token check, user lookup, the cart query,
the in-memory purchases, the user's top candidates (cached per model version, warmed in the
background after a load — the benchmark waits for that via the admin status endpoint), the
category/brand caps and the live stock check. The load average is recorded before and after,
because a loaded machine changes the figures several-fold.

``--model blend`` serves what the pipeline publishes when the blend wins validation: EASE
(low-rank solver, as ``auto`` picks once both sides pass 20,000; ``--ease-rank``) and ALS
(``--factors``), really fitted on the synthetic interactions, z-scored and weighted 1 : 2.
Every run also measures a bare FastAPI JSON endpoint (``bench/_bare_app.py``) at the same
rate with the same wrk settings, and reports the recommendations' p99, CPU per request and
wrk throughput as ratios to it (``--no-baseline`` skips it).

    python bench/bench_recs_serving.py [--model als|blend] [--items 100000] [--users 20000]
        [--duration 15] [--out NAME]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._open_loop import run_open_loop  # noqa: E402
from bench._server import (  # noqa: E402
    machine,
    process_tree_cpu_seconds,
    running_server,
    seed_catalog,
    server_pid_on_port,
    write_result,
)
from bench.bench_catalog import run_wrk  # noqa: E402

LUA_USERS = """
math.randomseed(7)
wrk.headers["Authorization"] = "Bearer {token}"
request = function()
  return wrk.format("GET", "/api/v1/recommendations/users/" .. math.random(1, {users}) .. "?k=10")
end
"""


def publish_synthetic_model(registry_root: Path, items: int, users: int, factors: int) -> str:
    """A fitted-looking ALS model with random factors, published and promoted as ``als``."""
    from models.factorization import ALSRecommender
    from models.registry import ModelRegistry

    model = ALSRecommender(factors=factors)
    interactions = synthetic_interactions(items, users)
    model.users, model.items = interactions.users, interactions.items
    model.user_items = interactions.matrix
    model.item_popularity = np.diff(interactions.matrix.tocsc().indptr).astype(np.float32)
    rng = np.random.default_rng(1)
    model.user_factors = rng.standard_normal((users, factors), dtype=np.float32) * 0.1
    model.item_factors = rng.standard_normal((items, factors), dtype=np.float32) * 0.1
    registry = ModelRegistry(registry_root, kind="recs")
    manifest = registry.publish_model(model, name="als")
    registry.promote("als", manifest["version"], force=True)
    return manifest["version"]


def synthetic_interactions(items: int, users: int):
    """10 random training items per user: the same matrix :func:`publish_synthetic_model` uses."""
    from features.id_map import IdMap
    from features.interactions import Interactions

    rng = np.random.default_rng(0)
    per_user = 10
    cols = rng.integers(0, items, size=users * per_user)
    rows = np.repeat(np.arange(users), per_user)
    matrix = sp.csr_matrix((np.ones(len(cols), np.float32), (rows, cols)), shape=(users, items))
    matrix.sum_duplicates()
    return Interactions(
        matrix=matrix,
        users=IdMap(list(range(1, users + 1))),
        items=IdMap(list(range(1, items + 1))),
    )


def publish_fitted_blend(
    registry_root: Path, items: int, users: int, factors: int, ease_rank: int
) -> str:
    """EASE + ALS fitted on the synthetic interactions, published and promoted as ``als``."""
    from models.factory import build_model
    from models.registry import ModelRegistry

    model = build_model(
        "blend",
        models=["ease", "als"],
        weights=[1.0, 2.0],
        params={
            "ease": {"solver": "lowrank", "rank": ease_rank, "weighting": "log", "l2": 100.0},
            "als": {"factors": factors, "weighting": "log"},
        },
    )
    started = time.process_time()
    model.fit(synthetic_interactions(items, users))
    print(f"blend fitted in {time.process_time() - started:.1f} CPU s")
    registry = ModelRegistry(registry_root, kind="recs")
    manifest = registry.publish_model(model, name="als")
    registry.promote("als", manifest["version"], force=True)
    return manifest["version"]


def seed_shop(data_dir: Path, args: argparse.Namespace) -> tuple[str, str]:
    """The bench's shop: the catalog in SQLite and the model (``--model``) published; returns
    the database URL and the model version. Shared with ``bench/profile_recs.py`` so the
    in-process profile measures the same shop."""
    url = f"sqlite:///{data_dir / 'bench.db'}"
    seed_catalog(url, args.items)
    if args.model == "blend":
        version = publish_fitted_blend(
            data_dir / "registry", args.items, args.users, args.factors, args.ease_rank
        )
    else:
        registry = data_dir / "registry"
        version = publish_synthetic_model(registry, args.items, args.users, args.factors)
    return url, version


def admin_token(base: str, database_url: str) -> str:
    from serving.core.config import Settings
    from serving.db.engine import Database
    from serving.services.shop.accounts import create_admin

    db = Database(Settings(database_url=database_url).sqlalchemy_url)
    with db.session(write=True) as session:
        create_admin(session, email="bench@example.com", password="bench-password-1")
    db.dispose()
    r = httpx.post(
        base + "/api/v1/auth/token",
        data={"username": "bench@example.com", "password": "bench-password-1"},
    )
    r.raise_for_status()
    return r.json()["access_token"]


def server_cpu_seconds(base: str) -> float:
    """User + system CPU of the uvicorn server serving ``base`` and its workers (/proc)."""
    return process_tree_cpu_seconds(server_pid_on_port(int(base.rsplit(":", 1)[1])))


def wait_until(base: str, path: str, check, token: str, timeout: float = 120.0) -> None:
    """Poll until the server reports what we wait for (index built, model loaded)."""
    deadline = time.monotonic() + timeout
    headers = {"Authorization": f"Bearer {token}"}
    while time.monotonic() < deadline:
        try:
            r = httpx.get(base + path, headers=headers, timeout=10)
        except httpx.TimeoutException:  # a busy machine, a first index build: ask again
            continue
        if r.status_code == 200 and check(r.json()):
            return
        time.sleep(0.5)
    raise RuntimeError(f"timed out waiting on {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--rate",
        type=float,
        default=1000.0,
        help="constant request rate of the open-loop phase (the target is stated at 1,000/s)",
    )
    parser.add_argument(
        "--model",
        choices=["als", "blend"],
        default="als",
        help="als: random factors (the default serving model's shape); blend: EASE + ALS fitted",
    )
    parser.add_argument("--ease-rank", type=int, default=128, help="rank of the blend's EASE")
    parser.add_argument("--no-baseline", action="store_true", help="skip the bare FastAPI run")
    parser.add_argument(
        "--warm-timeout",
        type=float,
        default=300.0,
        help="seconds to wait for the candidate warm-up (the blend's takes minutes when loaded)",
    )
    parser.add_argument(
        "--out",
        default=None,
        help="results name under bench/results/ (default bench_recs_serving[_MODEL])",
    )
    parser.add_argument(
        "--catalog-sync-seconds",
        type=float,
        default=None,
        help="override the search catalog sync interval (diagnosis: its passes stall the worker)",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        url, version = seed_shop(data_dir, args)
        extra_env = {}
        if args.catalog_sync_seconds is not None:
            extra_env["STORELOOP_CATALOG_SYNC_SECONDS"] = str(args.catalog_sync_seconds)
        with running_server(data_dir, url, extra_env=extra_env) as base:
            token = admin_token(base, url)
            # Let start-up work finish first: the model load and the first search index build.
            wait_until(
                base,
                "/api/v1/recommendations/users/1",
                lambda b: b["model_version"] == f"als:{version}",
                token,
            )
            wait_until(base, "/api/v1/search?q=red", lambda b: b["index_version"], token)
            auth = {"Authorization": f"Bearer {token}"}
            if httpx.get(base + "/api/v1/recommendations/status", headers=auth).status_code == 404:
                status: dict = {"candidates": None}  # a server from before the status endpoint
            else:
                wait_until(
                    base,
                    "/api/v1/recommendations/status",
                    lambda b: (b["candidates"] or {}).get("warm_seconds") is not None,
                    token,
                    timeout=args.warm_timeout,
                )
                status = httpx.get(base + "/api/v1/recommendations/status", headers=auth).json()
            sample = httpx.get(
                base + "/api/v1/recommendations/users/1?k=10",
                headers={"Authorization": f"Bearer {token}"},
            ).json()
            script = LUA_USERS.format(token=token, users=args.users)
            run_wrk(base, script=script, duration=3, connections=args.connections)  # warm-up
            load_before = os.getloadavg()
            cpu_before = server_cpu_seconds(base)
            result = run_wrk(
                base, script=script, duration=args.duration, connections=args.connections
            )
            cpu = server_cpu_seconds(base) - cpu_before
            # The target is a latency at a given rate, so measure it at that rate: an
            # open-loop client sends args.rate requests per second whatever the server does.
            users = args.users
            rng = np.random.default_rng(11)
            picks = rng.integers(1, users + 1, size=int(args.rate * (args.duration + 3)))
            headers = {"Authorization": f"Bearer {token}"}

            def make_request(i: int):
                return ("GET", f"/api/v1/recommendations/users/{picks[i]}?k=10", headers, b"")

            cpu_before = server_cpu_seconds(base)
            at_rate = run_open_loop(
                base, make_request, rate=args.rate, seconds=args.duration, warmup=3
            )
            cpu_at_rate = server_cpu_seconds(base) - cpu_before
    bare = None if args.no_baseline else measure_baseline(args)
    served = result["requests_per_s"] * args.duration
    cpu_ms = 1000.0 * cpu / served if served else float("nan")
    load_after = os.getloadavg()
    print(
        f"recs for a user ({args.items:,} items x {args.factors}): "
        f"{result['requests_per_s']:.0f} req/s  p50 {result['p50_ms']:.2f} ms  "
        f"p99 {result['p99_ms']:.2f} ms  errors {result['errors']}  "
        f"(strategy {sample['strategy']}, {len(sample['items'])} items)  "
        f"load average {load_before[0]:.1f} -> {load_after[0]:.1f}  "
        f"candidates warmed in {(status['candidates'] or {}).get('warm_seconds')} s\n"
        f"server CPU {cpu_ms:.3f} ms per request -> {1000.0 / cpu_ms:.0f} req/s per free core\n"
        f"open loop at {args.rate:.0f} req/s: achieved {at_rate['achieved_rate']:.0f} req/s  "
        f"p50 {at_rate['p50_ms']:.2f} ms  p90 {at_rate['p90_ms']:.2f} ms  "
        f"p99 {at_rate['p99_ms']:.2f} ms  p99.9 {at_rate['p999_ms']:.2f} ms  "
        f"codes {at_rate['status_codes']}  errors {at_rate['errors']}  "
        f"client late starts {at_rate['late_starts']}  "
        f"server CPU share {cpu_at_rate / (args.duration + 3):.2f} cores"
    )
    sent = args.rate * (args.duration + 3)
    shaped = {
        "open_loop": {**at_rate, "server_cpu_ms_per_request": 1000.0 * cpu_at_rate / sent},
        "wrk": {**result, "server_cpu_ms_per_request": cpu_ms},
    }
    vs_bare = None
    if bare is not None:
        from bench.bench_search_serving import ratios

        vs_bare = ratios(shaped, bare)
        o, w = bare["open_loop"], bare["wrk"]
        print(
            f"bare FastAPI, same run: open loop p50 {o['p50_ms']:.2f} p99 {o['p99_ms']:.2f} ms, "
            f"{o['server_cpu_ms_per_request']:.3f} ms CPU/req (load {o['load_average'][0]:.1f}) "
            f"| wrk {w['requests_per_s']:.0f} req/s p99 {w['p99_ms']:.2f} ms\n"
            f"recs ({args.model}) vs bare: {vs_bare}"
        )
    path = write_result(
        args.out or "bench_recs_serving" + ("" if args.model == "als" else f"_{args.model}"),
        {
            "model": args.model,
            "ease_rank": args.ease_rank if args.model == "blend" else None,
            "items": args.items,
            "factors": args.factors,
            "users": args.users,
            "workers": 1,
            "connections": args.connections,
            "duration_s": args.duration,
            "database": "sqlite",
            "catalog_sync_seconds": args.catalog_sync_seconds,
            "machine": machine(),
            "users_endpoint": result,
            "sample_strategy": sample["strategy"],
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in load_after],
            "candidates": status["candidates"],
            "server_cpu_ms_per_request": round(cpu_ms, 4),
            "open_loop": {
                **at_rate,
                "server_cores_used": round(cpu_at_rate / (args.duration + 3), 3),
            },
            "bare": bare,
            "vs_bare": vs_bare,
        },
    )
    print(f"wrote {path}")


def measure_baseline(args: argparse.Namespace) -> dict:
    """The bare FastAPI endpoint at the same rate, duration and wrk connections."""
    from bench.bench_search_serving import measure_bare

    return measure_bare(args.rate, args.duration, args.connections)


if __name__ == "__main__":
    main()
