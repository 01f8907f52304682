"""The shop built inside this process, for clients that drive it through ASGI.

The synthetic shoppers (``simulation``) may not import serving, yet ``storeloop simulate
--target inprocess`` runs the shop in the same process. The command line, which owns both
sides, hands the simulator a :class:`LocalShop`: everything the simulator needs from the shop
(schema, an admin account, a fresh app with its lifespan running) behind three methods, so the
simulator only ever sends HTTP requests to an ASGI callable.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serving.core.config import Settings

__all__ = ["LocalShop"]


@dataclass
class LocalShop:
    """A shop on ``settings``'s database and data directory, in simulation mode.

    Simulation mode (the shoppers' clock in ``client_ts``) and no rate limit: thousands of
    simulated shoppers come from one address. Picklable, so spawned worker processes can build
    their own app from it.
    """

    settings: Settings

    def __post_init__(self) -> None:
        self.settings = self.settings.model_copy(
            update={"simulation_mode": True, "rate_limit_enabled": False}
        )

    @classmethod
    def from_environment(cls) -> LocalShop:
        """The shop the environment (``DATA_DIR``, ``DATABASE_URL``, ...) describes."""
        return cls(Settings(simulation_mode=True, rate_limit_enabled=False))

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir

    def prepare(self, admin_email: str) -> str:
        """Migrate the schema and create (or reset) the admin; return its fresh password."""
        from serving.db import migrate
        from serving.db.engine import Database
        from serving.services.shop.accounts import create_admin

        self.settings.ensure_dirs()
        _ = self.settings.jwt_secret  # create it once, before any worker races for it
        migrate.upgrade(self.settings.sqlalchemy_url)
        password = secrets.token_urlsafe(16)
        db = Database(self.settings.sqlalchemy_url)
        with db.session(write=True) as session:
            create_admin(session, email=admin_email, password=password)
        db.dispose()
        return password

    @asynccontextmanager
    async def app(self, *, loader: bool = False) -> AsyncIterator[Any]:
        """A fresh app whose lifespan runs for the ``with`` block (an ASGI client runs none).

        The ``loader`` app only imports the catalog: it builds no search index (an empty one
        would be published and then served by the shopping apps, which would never see the
        products imported with simulated timestamps).
        """
        from serving.app import create_app

        settings = self.settings
        if loader:
            settings = settings.model_copy(update={"search_build_on_start": False})
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            yield app
