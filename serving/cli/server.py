"""``storeloop serve``: run the shop with uvicorn."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("serve", help="run the API and storefront with uvicorn")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--no-migrate", action="store_true", help="do not migrate before serving")
    p.add_argument("--log-level", default="warning")
    p.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from serving.core.config import Settings
    from serving.db import migrate

    settings = Settings()
    settings.ensure_dirs()
    _ = settings.jwt_secret  # create it once, before workers race for it
    if not args.no_migrate:
        migrate.upgrade(settings.sqlalchemy_url)
    print(f"storeloop serving on http://{args.host}:{args.port}/  (API docs at /docs)", flush=True)
    uvicorn.run(
        "serving.asgi:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        access_log=False,
        loop="uvloop",
        http="httptools",
        timeout_graceful_shutdown=10,
    )
    return 0
