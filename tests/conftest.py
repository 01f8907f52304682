"""Shared fixtures: a migrated database (SQLite or PostgreSQL), the app, clients, users.

``--db sqlite`` (default) or ``--db postgresql`` chooses the backend; tests that touch the
database are marked ``db`` automatically so ``-m db`` runs just those. In CI (``CI=true``) an
unreachable PostgreSQL fails the run instead of skipping it.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from serving.app import create_app
from serving.core.config import Settings
from serving.db import migrate
from serving.db.tables import Base

# Tests build their own shops. A developer's shop settings in the environment would otherwise
# reach the servers that tests start as subprocesses (DATA_DIR wins over STORELOOP_DATA_DIR).
for _var in (
    "DATA_DIR",
    "DATABASE_URL",
    "JWT_SECRET",
    "DAGSTER_HOME",
    "STORELOOP_DATA_DIR",
    "STORELOOP_DATABASE_URL",
    "REDIS_URL",
):
    os.environ.pop(_var, None)

PG_URL = os.environ.get("STORELOOP_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        default=os.environ.get("STORELOOP_TEST_DB", "sqlite"),
        choices=("sqlite", "postgresql"),
        help="database backend for tests that use one",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "db_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.db)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "db: uses the database chosen by --db")


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _pg_url_for_schema(schema: str) -> str:
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture(scope="session")
def backend(pytestconfig: pytest.Config) -> str:
    return pytestconfig.getoption("--db")


@pytest.fixture(scope="session")
def db_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database for the whole session; tables are emptied after each test."""
    if backend == "sqlite":
        path = tmp_path_factory.mktemp("db") / "test.db"
        url = f"sqlite:///{path}"
    else:
        schema = f"t_{_worker()}"
        admin = create_engine(Settings(database_url=PG_URL).sqlalchemy_url)
        try:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        except Exception as exc:  # noqa: BLE001
            message = f"PostgreSQL at {PG_URL} is unreachable: {exc}"
            if os.environ.get("CI", "").lower() == "true":
                pytest.exit(message, returncode=3)
            pytest.skip(message)
        finally:
            admin.dispose()
        url = _pg_url_for_schema(schema)
    sa_url = Settings(database_url=url).sqlalchemy_url
    migrate.upgrade(sa_url)
    yield url


def truncate_all(url: str) -> None:
    engine = create_engine(Settings(database_url=url).sqlalchemy_url)
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(
                text(
                    "TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"
                )
            )
        else:
            for table in tables:
                conn.execute(text(f'DELETE FROM "{table}"'))
    engine.dispose()


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Iterator[Settings]:
    yield Settings(
        data_dir=tmp_path / "data",
        database_url=db_url,
        jwt_secret_value=secrets.token_urlsafe(48),
        rate_limit_enabled=False,
        environment="test",
    )
    truncate_all(db_url)


@pytest.fixture
def app(settings: Settings):
    return create_app(settings)


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


class ShopActor:
    """A signed-in user driving the API in tests."""

    def __init__(self, client: TestClient, email: str, password: str, token: str) -> None:
        self.client = client
        self.email = email
        self.password = password
        self.token = token

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, url: str, **kw):
        return self.client.get(url, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    def post(self, url: str, **kw):
        return self.client.post(url, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    def patch(self, url: str, **kw):
        return self.client.patch(url, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    def delete(self, url: str, **kw):
        return self.client.delete(url, headers={**self.headers, **kw.pop("headers", {})}, **kw)


def login(client: TestClient, email: str, password: str, **kw) -> str:
    r = client.post("/api/v1/auth/token", data={"username": email, "password": password}, **kw)
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


@pytest.fixture
def make_customer(client: TestClient):
    counter = iter(range(1, 10_000))

    def _make(email: str | None = None, password: str = "correct-horse-1") -> ShopActor:
        email = email or f"customer{next(counter)}@example.com"
        r = client.post(
            "/api/v1/auth/register",
            json={"email": email, "password": password, "full_name": "Ada Shopper"},
        )
        assert r.status_code == 201, r.text
        return ShopActor(client, email, password, login(client, email, password))

    return _make


@pytest.fixture
def customer(make_customer) -> ShopActor:
    return make_customer()


@pytest.fixture
def admin(app, client: TestClient) -> ShopActor:
    from serving.services.accounts import create_admin

    with app.state.db.session(write=True) as session:
        create_admin(session, email="admin@example.com", password="admin-password-1")
    return ShopActor(
        client,
        "admin@example.com",
        "admin-password-1",
        login(client, "admin@example.com", "admin-password-1"),
    )


@pytest.fixture
def small_catalog(admin: ShopActor) -> dict:
    """Three-level category tree and a handful of products with stock."""

    def cat(slug: str, name: str, parent: int | None = None) -> int:
        r = admin.post("/api/v1/categories", json={"slug": slug, "name": name, "parent_id": parent})
        assert r.status_code == 201, r.text
        return r.json()["id"]

    electronics = cat("electronics", "Electronics")
    audio = cat("audio", "Audio", electronics)
    headphones = cat("headphones", "Headphones", audio)
    speakers = cat("speakers", "Speakers", audio)
    home = cat("home", "Home")
    products = {}
    specs = [
        ("HP-1", "Sonic Wireless Headphones", "Sonic", headphones, 5999, {"color": "black"}, 10),
        ("HP-2", "Sonic Studio Headphones", "Sonic", headphones, 12999, {"color": "white"}, 0),
        ("HP-3", "Aural Earbuds Pro", "Aural", headphones, 8999, {"color": "black"}, 3),
        (
            "SP-1",
            "Boom Bluetooth Speaker",
            "Boom",
            speakers,
            4999,
            {"color": "red", "waterproof": True},
            7,
        ),
        ("HM-1", "Cozy Wool Blanket", "Cozy", home, 3999, {"material": "wool"}, 20),
    ]
    for sku, title, brand, category, price, attrs, stock in specs:
        r = admin.post(
            "/api/v1/products",
            json={
                "sku": sku,
                "title": title,
                "brand": brand,
                "category_id": category,
                "price_minor": price,
                "attributes": attrs,
                "initial_stock": stock,
                "description": f"{title} by {brand}",
            },
        )
        assert r.status_code == 201, r.text
        products[sku] = r.json()
    return {
        "categories": {
            "electronics": electronics,
            "audio": audio,
            "headphones": headphones,
            "speakers": speakers,
            "home": home,
        },
        "products": products,
    }
