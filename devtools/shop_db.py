"""A shop's users, tokens and products written straight to its database, for set-up.

Tests and benchmarks of checkout need hundreds of customers and stocked products before the
clock starts; making them through the API would measure the set-up. This is the one module of
``devtools`` that imports serving (the tables' owner), and only tests and benchmarks use it.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from serving.core.config import Settings
from serving.core.security import TokenService, use_fast_hashing
from serving.db.engine import Database
from serving.services.shop import accounts, catalog

__all__ = ["ADDRESS", "Shop", "create_admin"]

#: A valid shipping address for orders.
ADDRESS = {
    "name": "Ada Shopper",
    "line1": "1 Main Street",
    "city": "Lisbon",
    "postal_code": "1000-001",
    "country": "PT",
}


class Shop:
    """Users, tokens and products written straight to the database."""

    def __init__(self, db_url: str, jwt_secret: str) -> None:
        use_fast_hashing(True)
        self.db = Database(Settings(database_url=db_url).sqlalchemy_url)
        self.tokens = TokenService(jwt_secret)
        with self.db.session(write=True) as s:
            self.admin_id = accounts.create_admin(
                s, email="admin@example.com", password="admin-password-1"
            ).id
            cat = catalog.create_category(s, slug="race", name="Race", parent_id=None)
        self.category_id = cat["id"]

    def product(self, stock: int, price: int = 2500) -> int:
        with self.db.session(write=True) as s:
            p = catalog.create_product(
                s,
                data={
                    "sku": "R-" + secrets.token_hex(4),
                    "title": "Racing thing",
                    "category_id": self.category_id,
                    "price_minor": price,
                    "initial_stock": stock,
                },
                actor_user_id=self.admin_id,
            )
        return p["id"]

    def customers(self, n: int) -> list[str]:
        tokens = []
        with self.db.session(write=True) as s:
            for _ in range(n):
                user = accounts.register_user(
                    s, email=f"c{secrets.token_hex(5)}@example.com", password="pw-123456789"
                )
                tokens.append(
                    self.tokens.issue(user_id=user.id, role="customer", now=datetime.now(UTC))[0]
                )
        return tokens

    def close(self) -> None:
        self.db.dispose()


def create_admin(database_url: str, email: str, password: str) -> None:
    """An admin account made directly in the database, as ``storeloop create-admin`` does
    (without its password-strength rule: tests use fixed, readable passwords)."""
    db = Database(Settings(database_url=database_url).sqlalchemy_url)
    try:
        with db.session(write=True) as session:
            accounts.create_admin(session, email=email, password=password)
    finally:
        db.dispose()
