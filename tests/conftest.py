"""Shared fixtures: a migrated database (SQLite or PostgreSQL), the app, clients, users.

``--db sqlite`` (default) or ``--db postgresql`` chooses the backend; tests that touch the
database are marked ``db`` automatically so ``-m db`` runs just those (except those marked
``db_agnostic``: they use a database but prove nothing about which one). In CI (``CI=true``) an
unreachable PostgreSQL fails the run instead of skipping it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError

from devtools.waits import scaled, time_scale
from features.atomic import pid_alive
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
    _scale_timeouts(config, items)
    for item in items:
        # ``db_agnostic``: uses a database but asserts nothing that depends on which one (the
        # database-specific parts are asserted by other tests on both): SQLite is enough.
        # Browser tests count as such: they assert what the pages show and send; the races,
        # stock give-backs and totals behind those pages are asserted at the API on both
        # databases (tests/checkout, tests/aftersales), and a second browser pass on
        # PostgreSQL cost ~80 s of the suite for no assertion of its own.
        agnostic = item.get_closest_marker("db_agnostic") or item.get_closest_marker("browser")
        if "db_url" in getattr(item, "fixturenames", ()) and not agnostic:
            item.add_marker(pytest.mark.db)
    if "PYTEST_XDIST_WORKER" in os.environ:
        _long_files_first(items)


def _scale_timeouts(config: pytest.Config, items: list[pytest.Item]) -> None:
    """pytest-timeout's limit (``timeout`` in pyproject.toml, or a test's own marker),
    stretched like every other wait by ``STORELOOP_TEST_TIME_SCALE`` and the load average
    (devtools/waits.py), so a loaded machine does not fail a correct build at 300 s."""
    scale = time_scale()
    if scale <= 1.0:
        return
    base = float(config.getoption("timeout", None) or config.getini("timeout") or 0)
    for item in items:
        marker = item.get_closest_marker("timeout")
        limit = float(marker.args[0]) if marker and marker.args else base
        if limit > 0:
            item.add_marker(pytest.mark.timeout(limit * scale), append=False)


def _long_files_first(items: list[pytest.Item]) -> None:
    """Put files with slow or browser tests first (a stable sort: otherwise as collected).

    With ``--dist loadfile --no-loadscope-reorder`` (scripts/test.sh) each file is one unit of
    work, handed to whichever worker is free in this order; a long file handed out last
    would keep one worker busy for minutes while the other one idles.
    """
    long = {i.path for i in items if any(i.iter_markers("slow")) or any(i.iter_markers("browser"))}
    items.sort(key=lambda item: item.path not in long)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "db: uses the database chosen by --db")


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _run_owner() -> int:
    """The pytest process that owns this run: the xdist controller, or this process."""
    return os.getppid() if "PYTEST_XDIST_WORKER" in os.environ else os.getpid()


def pg_schema_name(prefix: str = "t") -> str:
    """A PostgreSQL schema of this worker *and* this run.

    xdist workers never share one (``gw0``, ``gw1``), and neither do two runs at once on one
    server (two checkouts, a developer and an agent): with per-worker names only, the second
    run's set-up would drop the first run's tables under it.
    """
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", "")[:8] or f"p{os.getpid()}"
    return f"{prefix}_{_worker()}_{run}"


def pg_url_for_schema(schema: str, base: str = PG_URL) -> str:
    """``base`` with ``search_path`` set to ``schema``, and the schema as application_name,
    so ``pg_stat_activity`` shows which worker each connection belongs to."""
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}&application_name={schema}"


_SCHEMA_TAG = "storeloop-test"


def create_pg_schema(conn, schema: str) -> None:
    """Create ``schema`` tagged with this host and run, after dropping leftovers of dead runs
    on this host (a run killed before its teardown); other hosts' schemas are never touched."""
    host = socket.gethostname()
    conn.execute(text("SET LOCAL lock_timeout = '2s'"))
    rows = conn.execute(
        text(
            "SELECT n.nspname, d.description FROM pg_namespace n"
            " JOIN pg_description d ON d.objoid = n.oid"
            " AND d.classoid = 'pg_namespace'::regclass WHERE d.description LIKE :tag"
        ),
        {"tag": f"{_SCHEMA_TAG} host={host} pid=%"},
    ).all()
    for name, description in rows:
        pid = int(description.rsplit("pid=", 1)[1])
        if name != schema and not pid_alive(pid):
            # The other worker may be dropping it too: then skip it.
            with contextlib.suppress(DBAPIError), conn.begin_nested():
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    tag = f"{_SCHEMA_TAG} host={host} pid={_run_owner()}"
    conn.execute(text(f"COMMENT ON SCHEMA \"{schema}\" IS '{tag}'"))


def drop_pg_schema(schema: str) -> None:
    admin = create_engine(Settings(database_url=PG_URL).sqlalchemy_url)
    try:
        with admin.begin() as conn:
            conn.execute(text("SET LOCAL lock_timeout = '5s'"))
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    except DBAPIError as exc:  # a leftover would be dropped by the next run on this host
        print(f"could not drop test schema {schema}: {exc}")
    finally:
        admin.dispose()


@pytest.fixture(scope="session")
def backend(pytestconfig: pytest.Config) -> str:
    return pytestconfig.getoption("--db")


@pytest.fixture(scope="session")
def db_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database for the whole session; tables are emptied after each test.

    SQLite: a file under this worker's temp dir. PostgreSQL: a schema of this worker and run
    (``pg_schema_name``) in the test database, dropped at the end of the session.
    """
    schema = None
    if backend == "sqlite":
        path = tmp_path_factory.mktemp("db") / "test.db"
        url = f"sqlite:///{path}"
    else:
        schema = pg_schema_name()
        admin = create_engine(Settings(database_url=PG_URL).sqlalchemy_url)
        try:
            with admin.begin() as conn:
                create_pg_schema(conn, schema)
        except Exception as exc:  # noqa: BLE001
            message = f"PostgreSQL at {PG_URL} is unreachable: {exc}"
            if os.environ.get("CI", "").lower() == "true":
                pytest.exit(message, returncode=3)
            pytest.skip(message)
        finally:
            admin.dispose()
        url = pg_url_for_schema(schema)
    sa_url = Settings(database_url=url).sqlalchemy_url
    migrate.upgrade(sa_url)
    yield url
    dispose_reset_engine(url)
    if schema is not None:
        drop_pg_schema(schema)


#: Threads that an app's lifespan starts (serving/lifecycle.py and its components).
#: Every app a test starts must be stopped before its tables are emptied: a poller still
#: running may read or write the next test's rows (and, when the reset was a TRUNCATE, held a
#: lock it needed while waiting for one it held: a deadlock on PostgreSQL).
APP_THREADS = frozenset(
    {
        "catalog-sync",
        "checkout-batch",
        "checkout-recovery",
        "eventlog-writer",
        "outbox-worker",
        "recs-reload",
        "search-build",
        "search-rebuild",
        "search-reload",
        "wal-checkpoint",
        "webhook-dispatch",
    }
)
_reported_threads: set[int] = set()

#: Below PostgreSQL's deadlock_timeout (1 s): when the reset and a writer still running wait
#: for each other's rows, the reset gives up first and tries again, instead of one side failing.
TRUNCATE_LOCK_TIMEOUT = "500ms"


def _running_app_threads(wait: float) -> list[threading.Thread]:
    """App threads still alive after up to ``wait`` seconds (stoppers join theirs)."""
    deadline = time.monotonic() + scaled(wait)
    while True:
        alive = [
            t
            for t in threading.enumerate()
            if t.name in APP_THREADS and t.is_alive() and t.ident not in _reported_threads
        ]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.05)


_engines: dict[str, Engine] = {}


def _reset_engine(url: str) -> Engine:
    """One engine per database for the resets (a new engine and connection per test cost
    more than the reset itself); disposed with the session's database (``db_url``)."""
    engine = _engines.get(url)
    if engine is None:
        engine = _engines[url] = create_engine(Settings(database_url=url).sqlalchemy_url)
    return engine


def dispose_reset_engine(url: str) -> None:
    engine = _engines.pop(url, None)
    if engine is not None:
        engine.dispose()


def truncate_all(url: str) -> None:
    """Empty every table; fails (after emptying) if an app the test started is still running."""
    leaked = _running_app_threads(wait=5.0)
    engine = _reset_engine(url)
    if engine.dialect.name == "postgresql":
        _truncate_postgresql(engine)
    else:
        with engine.begin() as conn:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(text(f'DELETE FROM "{table.name}"'))
    if leaked:
        _reported_threads.update(t.ident for t in leaked if t.ident is not None)
        names = ", ".join(sorted(t.name for t in leaked))
        raise AssertionError(
            f"background threads of an app are still running when the test's tables are "
            f"emptied: {names}. Stop every app the test starts (use TestClient as a context "
            f"manager; shut down lifespans other libraries start)."
        )


#: The sequences of our tables' id columns (serial or identity) that have handed out a value
#: since they were created or last restarted.
_USED_SEQUENCES = text(
    "SELECT seq.relname FROM pg_class seq"
    " JOIN pg_namespace ns ON ns.oid = seq.relnamespace"
    " JOIN pg_depend dep ON dep.objid = seq.oid AND dep.classid = 'pg_class'::regclass"
    " AND dep.refclassid = 'pg_class'::regclass AND dep.deptype IN ('a', 'i')"
    " JOIN pg_class tab ON tab.oid = dep.refobjid"
    " JOIN pg_sequences ps ON ps.schemaname = ns.nspname AND ps.sequencename = seq.relname"
    " WHERE seq.relkind = 'S' AND ns.nspname = current_schema()"
    " AND tab.relname = ANY(:tables) AND ps.last_value IS NOT NULL"
)


def _truncate_postgresql(engine, attempts: int = 40) -> None:
    """Leave what ``TRUNCATE <every table> RESTART IDENTITY`` leaves (empty tables, ids from 1),
    touching only what the test wrote.

    A TRUNCATE of all 41 tables (it gives every table a new file) cost 0.9-1.8 s per test at
    a load average of ~20 on 2 cores, this 0.05-0.18 s (docs/architecture.md, "Test suite
    time"): more than many tests themselves, while most write to a handful of tables. One
    query finds the tables with rows, they are emptied with DELETE (children first, as on
    SQLite), and the sequences that handed out an id are restarted. DELETE takes no lock that
    the app's readers wait for.
    """
    tables = [t.name for t in Base.metadata.sorted_tables]
    probe = text(
        " UNION ALL ".join(f"SELECT '{n}' WHERE EXISTS (SELECT 1 FROM \"{n}\")" for n in tables)
    )
    delay = 0.05
    for attempt in range(1, attempts + 1):
        try:
            with engine.begin() as conn:
                conn.execute(text(f"SET LOCAL lock_timeout = '{TRUNCATE_LOCK_TIMEOUT}'"))
                filled = set(conn.execute(probe).scalars())
                for name in reversed(tables):
                    if name in filled:
                        conn.execute(text(f'DELETE FROM "{name}"'))
                for seq in conn.execute(_USED_SEQUENCES, {"tables": tables}).scalars().all():
                    conn.execute(text(f'ALTER SEQUENCE "{seq}" RESTART'))
            return
        except DBAPIError as exc:
            # 55P03 lock_not_available (our lock_timeout), 40P01 deadlock_detected
            if getattr(exc.orig, "sqlstate", None) not in ("55P03", "40P01"):
                raise
            if attempt == attempts:
                raise RuntimeError(
                    f"tables still locked after {attempts} attempts by: {_blockers(engine)}"
                ) from exc
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


def _blockers(engine) -> list[tuple]:
    """Other sessions of this worker's schema (application_name) that are not idle."""
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT pid, state, now() - xact_start, left(query, 200) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND application_name = current_setting('application_name')"
                " AND state <> 'idle'"
            )
        ).all()


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
    from serving.services.shop.accounts import create_admin

    with app.state.components.db.session(write=True) as session:
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
