"""``storeloop serve``: run the shop with uvicorn."""

from __future__ import annotations

import argparse
import sys


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
    from serving.core.storage import unwritable
    from serving.db import migrate

    settings = Settings()
    # A read-only or full data directory would fail later, in the middle of a worker's
    # start-up with a long traceback; say it once, up front, and do not claim to be serving.
    try:
        settings.ensure_dirs()
    except OSError as exc:
        problems = [f"{exc.filename}: {exc.strerror}"]
    else:
        problems = unwritable(settings)
    if problems:
        print(f"storeloop serve: cannot write to {'; '.join(problems)}", file=sys.stderr)
        return 1
    _ = settings.jwt_secret  # create it once, before workers race for it
    try:
        _ = settings.payment_webhook_secret  # likewise; production must set its own
    except ValueError as exc:
        print(f"storeloop serve: {exc}", file=sys.stderr)
        return 2
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
