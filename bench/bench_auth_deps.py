"""CPU an authenticated request spends in its auth dependency before reaching the handler.

Times N awaited calls of the caller dependency (``deps.get_caller``: the token verified, the
caller cache peeked) and of it plus the user check (``deps.get_optional_user``: what
``CallerId``, ``OptionalUser`` and ``CurrentUser`` pay) with one valid token on a migrated
SQLite file, in-process and single-threaded: wall time and the calling thread's CPU time, which
is the event loop's cost per request (and steadier than wall time on a busy machine).
Also times N ``GET /api/v1/me`` through ``TestClient`` (the whole stack, for scale).

    python bench/bench_auth_deps.py [--calls 5000] [--gets 1000] [--name auth_deps] [--no-cache]

``--no-cache`` turns both caches off: every call verifies the JWT and reads the user row, as
every call did before them (and as a cache miss still does).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._server import write_result  # noqa: E402


def _per_call_us(fn, n: int) -> dict[str, float]:
    """Wall and this thread's CPU microseconds per awaited call (CPU is steadier on a busy box)."""

    async def run() -> dict[str, float]:
        for _ in range(min(n, 200)):  # warm caches and the pool
            await fn()
        wall, cpu = time.perf_counter(), time.thread_time()
        for _ in range(n):
            await fn()
        return {
            "wall": (time.perf_counter() - wall) / n * 1e6,
            "cpu": (time.thread_time() - cpu) / n * 1e6,
        }

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--gets", type=int, default=1000)
    parser.add_argument("--name", default="auth_deps")
    parser.add_argument(
        "--no-cache", action="store_true", help="token and user caches off (the old path)"
    )
    args = parser.parse_args()

    from fastapi.testclient import TestClient

    from serving.api import deps
    from serving.app import create_app
    from serving.core.config import Settings
    from serving.db import migrate
    from serving.services.shop.accounts import register_user

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp) / "data",
            database_url=f"sqlite:///{tmp}/bench.db",
            jwt_secret_value=secrets.token_urlsafe(48),
            rate_limit_enabled=False,
            environment="test",
            search_build_on_start=False,
            **(
                {"auth_token_cache_entries": 0, "auth_user_cache_seconds": 0}
                if args.no_cache
                else {}
            ),
        )
        migrate.upgrade(settings.sqlalchemy_url)
        app = create_app(settings)
        with app.state.components.db.session(write=True) as session:
            user = register_user(session, email="bench@example.com", password="bench-password-1")
        token, _ = app.state.components.tokens.issue(
            user_id=user.id, role="customer", now=datetime.now(UTC)
        )

        def request():
            return SimpleNamespace(app=app, state=SimpleNamespace())

        async def optional_user():
            return await deps.get_optional_user(await deps.get_caller(request(), token))

        figures = {
            "deps.get_caller": _per_call_us(lambda: deps.get_caller(request(), token), args.calls),
            "deps.get_optional_user": _per_call_us(optional_user, args.calls),
        }
        headers = {"Authorization": f"Bearer {token}"}
        with TestClient(app) as client:
            for _ in range(50):
                assert client.get("/api/v1/me", headers=headers).status_code == 200
            start = time.perf_counter()
            for _ in range(args.gets):
                client.get("/api/v1/me", headers=headers)
            figures["GET /api/v1/me (TestClient)"] = {
                "wall": (time.perf_counter() - start) / args.gets * 1e6
            }
        app.state.components.db.dispose()

    for name, us in figures.items():
        cpu = f"{us['cpu']:9.1f} µs CPU" if "cpu" in us else ""
        print(f"{name:30s} {us['wall']:9.1f} µs wall {cpu}")
    path = write_result(
        args.name,
        {
            "calls": args.calls,
            "gets": args.gets,
            "caches": not args.no_cache,
            "us_per_call": figures,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
