"""``storeloop migrate`` and ``storeloop create-admin``."""

from __future__ import annotations

import argparse
import getpass
import os
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("migrate", help="bring the database schema up to date")
    p.add_argument("--revision", default="head", help="target revision (default: head)")
    p.add_argument("--downgrade", action="store_true", help="step down to --revision instead")
    p.set_defaults(func=_migrate)

    p = subparsers.add_parser("create-admin", help="create (or reset) an admin account")
    p.add_argument("--email", required=True)
    p.add_argument(
        "--password",
        help="the password (default: $STORELOOP_ADMIN_PASSWORD, else asked for)",
    )
    p.set_defaults(func=_create_admin)


def _migrate(args: argparse.Namespace) -> int:
    from serving.core.config import Settings
    from serving.db import migrate

    settings = Settings()
    settings.ensure_dirs()
    if args.downgrade:
        migrate.downgrade(
            settings.sqlalchemy_url, args.revision if args.revision != "head" else "-1"
        )
    else:
        migrate.upgrade(settings.sqlalchemy_url, args.revision)
    from serving.db.engine import make_engine

    engine = make_engine(settings.sqlalchemy_url)
    print(migrate.schema_status(engine).describe())
    engine.dispose()
    return 0


def _create_admin(args: argparse.Namespace) -> int:
    from serving.core.config import Settings
    from serving.db.engine import Database
    from serving.services.shop.accounts import create_admin
    from serving.services.shop.password_policy import WeakPassword, check_password

    password = args.password or os.environ.get("STORELOOP_ADMIN_PASSWORD")
    if not password:
        password = getpass.getpass("Admin password: ")
    if len(password) < 8:
        print("error: the password must have at least 8 characters")
        return 2
    settings = Settings()
    try:  # the same rule as registration: an admin's password matters most
        check_password(password, min_score=settings.password_min_score, user_inputs=[args.email])
    except WeakPassword as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 2
    db = Database(settings.sqlalchemy_url)
    with db.session(write=True) as session:
        user = create_admin(session, email=args.email, password=password)
        print(f"admin {user.email} (id {user.id}) ready")
    db.dispose()
    return 0
