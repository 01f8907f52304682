"""Where a personal recommendation request's CPU goes, in process (issue 21).

The same seed data as ``bench_recs_serving.py`` (100,000 products in SQLite, a synthetic ALS
of 20,000 users × 64 factors, or ``--model blend``), the real app built by ``create_app`` with
its lifespan running, and requests handed straight to the ASGI app (no socket, no HTTP
parser: those cost the same as for any FastAPI endpoint). It waits for the candidate cache to
be warm, then sends ``--requests`` requests for random users as an admin, one at a time, and
reports the process CPU per request (background threads included, as the server's /proc
figure does), the same figure for the bare FastAPI endpoint (``bench/_bare_app.py``) driven
the same way, their ratio, and the top of a cProfile of the request loop (the event loop's
thread only, timed in that thread's CPU time).

    .venv/bin/python bench/profile_recs.py [--model als|blend] [--requests 5000]
        [--items 100000] [--users 20000] [--sort tottime|cumulative] [--top 40]
        [--out NAME] [--pstats /tmp/recs.pstats] [--no-cprofile]

cProfile inflates code made of many small calls (FastAPI's dependency solving, a Python loop)
several-fold against C calls; for proportions, sample instead:

    .venv/bin/py-spy record -r 250 -f raw -o /tmp/recs.txt -- \
        .venv/bin/python bench/profile_recs.py --no-cprofile --users 2000 --requests 20000
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._server import write_result  # noqa: E402
from bench.bench_recs_serving import seed_shop  # noqa: E402


class AsgiDriver:
    """Sends GET requests straight into an ASGI app and returns (status, body)."""

    def __init__(self, app) -> None:
        self.app = app

    async def get(self, path: str, query: str = "", headers: dict[str, str] | None = None):
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": [(b"host", b"bench")]
            + [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
            "client": ("127.0.0.1", 40000),
            "server": ("bench", 80),
            "state": {},
        }
        sent: list[dict] = []

        async def receive() -> dict:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict) -> None:
            sent.append(message)

        await self.app(scope, receive, send)
        status = next(m["status"] for m in sent if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return status, body


async def cpu_per_request(driver: AsgiDriver, requests: list[tuple[str, str]], headers) -> float:
    """Process CPU seconds per request over ``requests`` (sent one after another)."""
    started = time.process_time()
    for path, query in requests:
        status, body = await driver.get(path, query, headers)
        if status != 200:
            raise RuntimeError(f"{path}?{query}: {status} {body[:200]!r}")
    return (time.process_time() - started) / len(requests)


async def profile_shop(args: argparse.Namespace, data_dir: Path) -> dict:
    from serving.app import create_app
    from serving.core.config import Settings
    from serving.services.shop.accounts import create_admin

    url, version = seed_shop(data_dir, args)
    settings = Settings(
        data_dir=data_dir,
        database_url=url,
        jwt_secret_value=secrets.token_urlsafe(48),
        rate_limit_enabled=False,
        log_level="warning",
    )
    app = create_app(settings)
    components = app.state.components
    with components.db.session(write=True) as session:
        admin = create_admin(session, email="bench@example.com", password="bench-password-1")
        admin_id = admin.id
    token, _ = components.tokens.issue(user_id=admin_id, role="admin", now=datetime.now(UTC))
    headers = {"Authorization": f"Bearer {token}"}
    driver = AsgiDriver(app)
    async with app.router.lifespan_context(app):
        recs = components.recs
        started = time.monotonic()
        while True:  # as the HTTP bench: the model served, its candidates warm
            bundle = recs.current
            cands = bundle.candidates if bundle is not None else None
            if (
                bundle is not None
                and bundle.version == version
                and recs.in_memory(None)
                and cands is not None
                and cands.warm_seconds is not None
            ):
                break
            if time.monotonic() - started > args.timeout:
                raise RuntimeError("timed out waiting for the model and its candidates")
            await asyncio.sleep(0.5)
        print(f"model {bundle.label} served, candidates warm in {cands.warm_seconds:.1f} s")
        while True:  # and the first search index built (its build runs in a thread)
            status, body = await driver.get("/api/v1/search", "q=red", headers)
            if status == 200 and orjson.loads(body).get("index_version"):
                break
            if time.monotonic() - started > args.timeout:
                raise RuntimeError("timed out waiting for the search index")
            await asyncio.sleep(0.5)
        rng = np.random.default_rng(11)
        picks = rng.integers(1, args.users + 1, size=args.requests)
        requests = [(f"/api/v1/recommendations/users/{u}", "k=10") for u in picks]
        await cpu_per_request(driver, requests[: min(500, len(requests))], headers)  # warm-up
        load = os.getloadavg()
        cpu = await cpu_per_request(driver, requests, headers)
        # CPU time of the event loop's thread: a wall-clock profile would charge each GIL
        # release (SQLite, os.urandom) with the background threads' time slices.
        profiler = cProfile.Profile(time.thread_time)
        if args.cprofile:
            profiler.enable()
            await cpu_per_request(driver, requests, headers)
            profiler.disable()
        status, sample = await driver.get(requests[0][0], requests[0][1], headers)
    return {
        "cpu_ms_per_request": 1000 * cpu,
        "load_average": [round(x, 2) for x in load],
        "warm_seconds": cands.warm_seconds,
        "profiler": profiler,
        "sample": sample.decode()[:300],
    }


async def profile_bare(args: argparse.Namespace) -> float:
    from bench._bare_app import app

    driver = AsgiDriver(app)
    requests = [("/json", f"q=red&limit={i % 50}") for i in range(args.requests)]
    await cpu_per_request(driver, requests[:500], {})
    return 1000 * await cpu_per_request(driver, requests, {})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["als", "blend"], default="als")
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--ease-rank", type=int, default=128)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument(
        "--no-cprofile",
        dest="cprofile",
        action="store_false",
        help="skip the cProfile pass (e.g. under py-spy, whose sampling inflates nothing)",
    )
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--out", default=None, help="results name under bench/results/")
    parser.add_argument("--pstats", type=Path, default=None, help="also dump the raw profile")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="profile-recs-") as tmp:
        shop = asyncio.run(profile_shop(args, Path(tmp)))
    bare = asyncio.run(profile_bare(args))
    if args.cprofile:
        stream = io.StringIO()
        stats = pstats.Stats(shop["profiler"], stream=stream)
        stats.sort_stats(args.sort).print_stats(args.top)
        print(stream.getvalue())
        if args.pstats:
            stats.dump_stats(str(args.pstats))
    ratio = shop["cpu_ms_per_request"] / bare
    print(
        f"in process, {args.requests} requests ({args.model}): "
        f"recs {shop['cpu_ms_per_request']:.3f} ms CPU/req, bare FastAPI {bare:.3f} ms, "
        f"ratio {ratio:.2f} (load {shop['load_average'][0]:.1f})\nsample: {shop['sample']}"
    )
    if args.out:
        path = write_result(
            args.out,
            {
                "model": args.model,
                "items": args.items,
                "users": args.users,
                "requests": args.requests,
                "recs_cpu_ms_per_request": round(shop["cpu_ms_per_request"], 4),
                "bare_cpu_ms_per_request": round(bare, 4),
                "ratio": round(ratio, 3),
                "load_average": shop["load_average"],
                "candidates_warm_seconds": shop["warm_seconds"],
            },
        )
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
