"""Bounded mixed-traffic load test against a local storeloop, plus a 10x spike drill.

Traffic goes to 127.0.0.1 only: the server is ``uvicorn serving.asgi:app`` in a subprocess
(``bench/_server.py``) and this process is the asyncio + httpx load generator. The mix:
~60% browse/search, 25% recommendations, 10% cart, 5% checkout. Reports p50/p95/p99 and
throughput per endpoint for each (backend, workers) combination and writes
``bench/results/load_mix_<backend>.json``.

``--spike`` runs baseline → 10x the clients → baseline with the in-flight cap set
(``STORELOOP_MAX_IN_FLIGHT_REQUESTS``) and checks: refused requests are 429/503 with
Retry-After, no request times out, p99 of admitted requests stays bounded, and the last phase
has no refusals (recovery). Exit status 1 if a check fails. Results in
``bench/results/load_spike_<backend>.json``.

    .venv/bin/python bench/load_mix.py --backend sqlite --workers 1 2 --seconds 20
    .venv/bin/python bench/load_mix.py --backend postgresql --workers 1 2 --products 100000
    .venv/bin/python bench/load_mix.py --spike --seconds 10 --clients 8 --max-in-flight 32
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._server import running_server, seed_catalog, write_result  # noqa: E402

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
ADDRESS = {
    "name": "Load Tester",
    "line1": "1 Bench Road",
    "city": "Porto",
    "postal_code": "4000-001",
    "country": "PT",
}


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))] * 1000, 2)


class Stats:
    def __init__(self) -> None:
        self.lat: dict[str, list[float]] = defaultdict(list)
        self.status: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.shed_without_retry_after = 0
        self.timeouts = 0

    def summary(self, seconds: float) -> dict:
        out = {}
        for name in sorted(self.status):
            admitted = self.lat.get(name, [])
            out[name] = {
                "requests": sum(self.status[name].values()),
                "throughput_rps": round(sum(self.status[name].values()) / seconds, 1),
                "p50_ms": _pct(admitted, 0.50),
                "p95_ms": _pct(admitted, 0.95),
                "p99_ms": _pct(admitted, 0.99),
                "status": dict(self.status[name]),
            }
        every = [v for vs in self.lat.values() for v in vs]
        total = sum(sum(s.values()) for s in self.status.values())
        out["_all"] = {
            "requests": total,
            "throughput_rps": round(total / seconds, 1),
            "p50_ms": _pct(every, 0.5),
            "p95_ms": _pct(every, 0.95),
            "p99_ms": _pct(every, 0.99),
            "shed": sum(s.get("429", 0) + s.get("503", 0) for s in self.status.values()),
            "shed_without_retry_after": self.shed_without_retry_after,
            "timeouts": self.timeouts,
            "server_errors": sum(
                n
                for s in self.status.values()
                for code, n in s.items()
                if code.startswith("5") and code != "503"
            ),
        }
        return out


async def _setup(base: str, users: int) -> list[str]:
    tokens = []
    async with httpx.AsyncClient(base_url=base, timeout=30) as c:
        for i in range(users):
            email = f"load{i}-{uuid.uuid4().hex[:6]}@example.com"
            await c.post(
                "/api/v1/auth/register", json={"email": email, "password": "umbrella-owl-3"}
            )
            r = await c.post(
                "/api/v1/auth/token", data={"username": email, "password": "umbrella-owl-3"}
            )
            tokens.append(r.json()["access_token"])
    return tokens


async def _one(c: httpx.AsyncClient, rng: random.Random, tokens: list[str], products: int):
    """Pick one action by the mix; returns (endpoint name, coroutine)."""
    pid = rng.randint(1, products)
    token = rng.choice(tokens)
    auth = {"Authorization": f"Bearer {token}"}
    roll = rng.random()
    if roll < 0.20:
        return "browse:list", c.get("/api/v1/products", params={"limit": 24})
    if roll < 0.40:
        return "browse:product", c.get(f"/api/v1/products/{pid}")
    if roll < 0.60:
        word = rng.choice(["black", "white", "red", "product", "blue", "green"])
        return "search", c.get("/api/v1/search", params={"q": word})
    if roll < 0.70:
        return "recs:popular", c.get("/api/v1/recommendations/popular", params={"k": 10})
    if roll < 0.80:
        return "recs:similar", c.get(f"/api/v1/recommendations/products/{pid}/similar")
    if roll < 0.85:
        return "recs:session", c.get(
            "/api/v1/recommendations/session", headers={"X-Session-Id": "load-" + token[-20:]}
        )
    if roll < 0.90:
        return "cart:add", c.post(
            "/api/v1/cart/items", json={"product_id": pid, "quantity": 1}, headers=auth
        )
    if roll < 0.95:
        return "cart:get", c.get("/api/v1/cart", headers=auth)
    return "checkout", _checkout(c, pid, auth)


async def _checkout(c: httpx.AsyncClient, pid: int, auth: dict) -> httpx.Response:
    card = {"card_number": "4242424242424242", "exp_month": 12, "exp_year": 2099, "cvc": "123"}
    r = await c.post("/api/v1/payments/methods", json=card)
    if r.status_code != 201:
        return r
    body = {
        "items": [{"product_id": pid, "quantity": 1}],
        "shipping_address": ADDRESS,
        "payment_method": r.json()["payment_method"],
    }
    return await c.post(
        "/api/v1/orders", json=body, headers={**auth, "Idempotency-Key": uuid.uuid4().hex}
    )


async def _run(base: str, tokens: list[str], products: int, clients: int, seconds: float, seed=1):
    stats = Stats()
    deadline = time.monotonic() + seconds

    async def client_loop(n: int) -> None:
        rng = random.Random(seed * 1000 + n)
        async with httpx.AsyncClient(
            base_url=base, timeout=10, limits=httpx.Limits(max_connections=1)
        ) as c:
            while time.monotonic() < deadline:
                name, coro = await _one(c, rng, tokens, products)
                started = time.perf_counter()
                try:
                    r = await coro
                except httpx.TimeoutException:
                    stats.timeouts += 1
                    stats.status[name]["timeout"] += 1
                    continue
                except httpx.HTTPError:
                    stats.status[name]["conn_error"] += 1
                    continue
                elapsed = time.perf_counter() - started
                stats.status[name][str(r.status_code)] += 1
                if r.status_code in (429, 503):
                    if "retry-after" not in r.headers:
                        stats.shed_without_retry_after += 1
                    await asyncio.sleep(min(1.0, float(r.headers.get("retry-after", 1))) / 10)
                else:
                    stats.lat[name].append(elapsed)

    started = time.monotonic()
    await asyncio.gather(*(client_loop(i) for i in range(clients)))
    return stats.summary(time.monotonic() - started)


def _database(backend: str, work: Path, products: int) -> str:
    if backend == "sqlite":
        url = f"sqlite:///{work / 'storeloop.db'}"
    else:
        from sqlalchemy import create_engine, text

        from serving.core.config import Settings, with_server_option

        schema = "bench_load_mix"
        engine = create_engine(Settings(database_url=PG_URL).sqlalchemy_url)
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine.dispose()
        url = with_server_option(PG_URL, "search_path", schema)
    seed_catalog(url, products)
    return url


def _env(backend: str, extra: dict | None = None) -> dict:
    env = {
        "STORELOOP_SEARCH_RELOAD_SECONDS": "3600",
        "STORELOOP_LOG_LEVEL": "warning",
        **(extra or {}),
    }
    if backend == "postgresql":
        env["REDIS_URL"] = "redis://127.0.0.1:6379/0"
    return env


def mix(args) -> int:
    results = {}
    for workers in args.workers:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            url = _database(args.backend, work, args.products)
            with running_server(
                work / "data", url, workers=workers, extra_env=_env(args.backend)
            ) as base:
                tokens = asyncio.run(_setup(base, args.users))
                asyncio.run(_run(base, tokens, args.products, args.clients, 2.0))  # warm-up
                summary = asyncio.run(_run(base, tokens, args.products, args.clients, args.seconds))
        results[f"workers_{workers}"] = summary
        a = summary["_all"]
        print(
            f"{args.backend} workers={workers}: {a['throughput_rps']} req/s "
            f"p50 {a['p50_ms']} p95 {a['p95_ms']} p99 {a['p99_ms']} ms"
        )
    suffix = "" if args.products == 10_000 else f"_{args.products // 1000}k"
    path = write_result(
        f"load_mix_{args.backend}{suffix}",
        {
            "config": {
                "backend": args.backend,
                "products": args.products,
                "clients": args.clients,
                "seconds": args.seconds,
                "mix": "60% browse/search, 25% recs, 10% cart, 5% checkout",
                "redis": args.backend == "postgresql",
            },
            "results": results,
        },
    )
    print(path)
    return 0


def spike(args) -> int:
    cap = args.max_in_flight
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        url = _database(args.backend, work, args.products)
        env = _env(args.backend, {"STORELOOP_MAX_IN_FLIGHT_REQUESTS": str(cap)})
        with running_server(work / "data", url, workers=args.workers[0], extra_env=env) as base:
            tokens = asyncio.run(_setup(base, args.users))
            asyncio.run(_run(base, tokens, args.products, args.clients, 2.0))
            phases = {}
            for name, clients in (
                ("baseline", args.clients),
                ("spike_10x", args.clients * 10),
                ("recovery", args.clients),
            ):
                phases[name] = asyncio.run(
                    _run(base, tokens, args.products, clients, args.seconds)
                )["_all"]
                phases[name]["clients"] = clients
                p = phases[name]
                print(
                    f"{name}: {clients} clients {p['throughput_rps']} req/s p99 {p['p99_ms']} ms "
                    f"shed {p['shed']} timeouts {p['timeouts']}"
                )
    base_p99 = phases["baseline"]["p99_ms"] or 1.0
    bound = max(args.p99_bound_ms, 5 * base_p99)
    checks = {
        "spike_shed_some": phases["spike_10x"]["shed"] > 0,
        "shed_have_retry_after": all(p["shed_without_retry_after"] == 0 for p in phases.values()),
        "no_timeouts": all(p["timeouts"] == 0 for p in phases.values()),
        "no_5xx_other_than_503": all(p["server_errors"] == 0 for p in phases.values()),
        f"spike_admitted_p99_below_{bound:.0f}ms": (phases["spike_10x"]["p99_ms"] or 0) <= bound,
        "recovery_without_shedding": phases["recovery"]["shed"] == 0,
    }
    passed = all(checks.values())
    path = write_result(
        f"load_spike_{args.backend}",
        {
            "config": {
                "backend": args.backend,
                "workers": args.workers[0],
                "max_in_flight_per_worker": cap,
                "clients": args.clients,
                "seconds_per_phase": args.seconds,
                "products": args.products,
            },
            "phases": phases,
            "checks": checks,
            "passed": passed,
        },
    )
    print(("PASS " if passed else "FAIL ") + str(checks))
    print(path)
    return 0 if passed else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--workers", type=int, nargs="+", default=[1])
    ap.add_argument("--products", type=int, default=10_000)
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--spike", action="store_true")
    ap.add_argument("--max-in-flight", type=int, default=32)
    ap.add_argument("--p99-bound-ms", type=float, default=2000.0)
    args = ap.parse_args()
    return spike(args) if args.spike else mix(args)


if __name__ == "__main__":
    raise SystemExit(main())
