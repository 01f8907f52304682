"""A small shop with orders and a clickstream, built through the app fixtures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from features.rec_ids import SECRET_FILE, RecIdVerifier
from serving.core.config import Settings
from tests.pipelines.shop_builder import ShopFacts, clickstream, insert_orders


@dataclass
class Shop:
    """Where the shop lives and what was written into it."""

    settings: Settings
    day: str
    orders: ShopFacts
    events: ShopFacts

    @property
    def data_dir(self) -> Path:
        return Path(self.settings.data_dir)


@pytest.fixture
def shop(settings: Settings, small_catalog: dict, make_customer) -> Shop:
    """Catalog, three customers, nine orders (one cancelled per customer), events."""
    customers = [make_customer() for _ in range(3)]
    engine = create_engine(settings.sqlalchemy_url)
    try:
        with engine.connect() as conn:
            from sqlalchemy import text

            user_ids = [
                conn.execute(
                    text("SELECT id FROM users WHERE email = :e"), {"e": c.email}
                ).scalar_one()
                for c in customers
            ]
        products = sorted(small_catalog["products"].values(), key=lambda p: p["id"])
        now = datetime.now(UTC)
        # Keep every row inside today's partition even close to midnight.
        when = max(now - timedelta(hours=3), now.replace(hour=0, minute=0, second=1))
        orders = insert_orders(engine, user_ids, products, when)
    finally:
        engine.dispose()
    start = now.replace(hour=0, minute=5, second=0, microsecond=0)
    # Where a shop without JWT_SECRET in its environment keeps its signing secret; the
    # pipelines read it there to verify the signed rec ids (features.rec_ids).
    (Path(settings.data_dir) / SECRET_FILE).write_text(settings.jwt_secret)
    events = clickstream(
        Path(settings.data_dir) / "events",
        user_ids,
        [p["id"] for p in products],
        start,
        rec_ids=RecIdVerifier(settings.jwt_secret),
    )
    return Shop(settings, now.date().isoformat(), orders, events)
