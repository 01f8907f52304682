"""STORELOOP_PG_SYNCHRONOUS_COMMIT: PostgreSQL commits that do not wait for the disk.

The setting travels in the connection's libpq ``options``, beside whatever the URL already
carries there (the tests' own ``search_path``), so no connection of the app misses it and
none spends a round trip on it. SQLite ignores it (its ``synchronous`` pragma is the app's).
"""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from serving.app import create_app
from serving.core.config import Settings, with_server_option

from .conftest import order_body, place, tokenise


def test_the_option_joins_those_already_in_the_url():
    url = with_server_option(
        "postgresql+psycopg://shop:p%40ss@db:5432/shop?options=-csearch_path%3Dtenant&sslmode=require",
        "synchronous_commit",
        "off",
    )
    parsed = make_url(url)
    assert parsed.password == "p@ss"
    assert parsed.query["sslmode"] == "require"
    assert parsed.query["options"] == "-csearch_path=tenant -c synchronous_commit=off"


def test_unset_leaves_the_url_alone():
    plain = "postgresql://shop@db/shop"
    unset = Settings(database_url=plain, pg_synchronous_commit=None)
    assert unset.sqlalchemy_url == "postgresql+psycopg://shop@db/shop"
    on_sqlite = Settings(database_url="sqlite:///shop.db", pg_synchronous_commit="off")
    assert on_sqlite.sqlalchemy_url == "sqlite:///shop.db"


def test_an_unknown_value_is_refused():
    with pytest.raises(ValueError, match="pg_synchronous_commit"):
        Settings(database_url="postgresql://shop@db/shop", pg_synchronous_commit="sometimes")


@pytest.fixture
def app(settings):
    return create_app(settings.model_copy(update={"pg_synchronous_commit": "off"}))


def test_checkout_runs_with_asynchronous_commit(app, client, customer, make_product, backend):
    db = app.state.components.db
    if backend == "postgresql":
        with db.engine.connect() as conn:
            assert conn.execute(text("SHOW synchronous_commit")).scalar() == "off"
            # The URL's search_path (the test schema) still holds beside it.
            assert conn.execute(text("SELECT current_schema()")).scalar() != "public"
    pid = make_product(3)
    r = place(customer, order_body(tokenise(client), [(pid, 2)]))
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "fulfilled"
    r = customer.get(f"/api/v1/orders/{r.json()['id']}")
    assert r.status_code == 200 and r.json()["status"] == "fulfilled"
