"""Fixtures for search and recommendation serving: fast polling, published models, waiting.

The shared ``settings`` fixture is overridden only to shorten the reload, sync and cache
intervals, so tests see hot swaps and catalog changes in fractions of a second instead of
the production defaults of several seconds.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from devtools.waits import scaled
from features.interactions import interactions_from_triples
from models.factory import build_model
from models.registry import ModelRegistry
from serving.core.config import Settings
from serving.db.tables import User
from serving.db.tables.orders import Order, OrderLine
from tests.conftest import truncate_all


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Iterator[Settings]:
    yield Settings(
        data_dir=tmp_path / "data",
        database_url=db_url,
        jwt_secret_value=secrets.token_urlsafe(48),
        rate_limit_enabled=False,
        environment="test",
        search_reload_seconds=0.05,
        catalog_sync_seconds=0.1,
        search_cache_seconds=0.2,
        live_data_seconds=0.0,
        recs_reload_seconds=0.05,
        recs_catalog_refresh_seconds=0.1,
        recs_max_per_category=None,
        recs_max_per_brand=None,
    )
    truncate_all(db_url)


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy, failing after ``timeout`` s."""
    deadline = time.monotonic() + scaled(timeout)  # devtools/waits.py
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)  # a polling interval, not a wait for an outcome
    raise AssertionError(f"timed out waiting for {what}")


def publish_model(
    settings: Settings,
    pairs: list[tuple[int, int]],
    name: str = "als",
    promote: bool = True,
    **params: Any,
) -> str:
    """Fit a small model on (user id, product id) pairs, publish and promote it."""
    users = np.asarray([u for u, _ in pairs])
    items = np.asarray([i for _, i in pairs])
    interactions = interactions_from_triples(users, items)
    defaults = {"factors": 8, "iterations": 5, "num_threads": 1} if name == "als" else {}
    model = build_model(name, **{**defaults, **params}).fit(interactions)
    registry = ModelRegistry(settings.registry_path, kind="recs")
    manifest = registry.publish_model(
        model,
        name=settings.recs_model_name,
        metrics={"ndcg@10": 0.5},
        baselines={"popular": {"ndcg@10": 0.1}},
        evaluation={"protocol": "time", "k": 10},
    )
    if promote:
        registry.promote(settings.recs_model_name, manifest["version"], force=True)
    return manifest["version"]


def add_buyers(app, count: int, start: int = 9000) -> list[int]:
    """Users that exist only to own orders (no password anyone knows), ids from ``start``."""
    now = datetime.now(UTC)
    with app.state.components.db.transaction() as s:
        for uid in range(start, start + count):
            s.add(
                User(
                    id=uid,
                    email=f"buyer{uid}@example.com",
                    password_hash="!",
                    created_at=now,
                    updated_at=now,
                )
            )
    return list(range(start, start + count))


def insert_order(app, user_id: int, product_ids: list[int], when=None, status: str = "paid") -> str:
    """An order row as checkout would leave it, created (and last changed) at ``when``."""
    when = when or datetime.now(UTC)
    order_id = uuid.uuid4().hex[:20]
    with app.state.components.db.transaction() as s:
        s.add(
            Order(
                id=order_id,
                user_id=user_id,
                status=status,
                currency="EUR",
                subtotal_minor=1,
                shipping_minor=0,
                total_minor=1,
                shipping_address={},
                payment_method="pm_x",
                from_cart=False,
                reserved_until=when + timedelta(minutes=15),
                created_at=when,
                updated_at=when,
            )
        )
        s.flush()
        for pid in product_ids:
            s.add(
                OrderLine(
                    order_id=order_id,
                    product_id=pid,
                    title="x",
                    quantity=1,
                    unit_price_minor=1,
                    line_total_minor=1,
                )
            )
    return order_id


def add_product(
    admin, sku: str, category_id: int, stock: int = 10, title: str | None = None
) -> int:
    r = admin.post(
        "/api/v1/products",
        json={
            "sku": sku,
            "title": title or f"Product {sku}",
            "category_id": category_id,
            "price_minor": 1999,
            "initial_stock": stock,
        },
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]
