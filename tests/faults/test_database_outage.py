"""Drill: PostgreSQL goes away and comes back (through a TCP proxy we cut).

Pass: while it is away, API requests fail fast with 503 problem+json and Retry-After and
``/readyz`` says not ready; the liveness probe stays up; when it is back, the same process
answers normally again without a restart.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from devtools.waits import scaled
from serving.app import create_app
from serving.core.config import Settings
from serving.db import migrate
from tests.conftest import (
    PG_URL,
    create_pg_schema,
    drop_pg_schema,
    pg_schema_name,
    pg_url_for_schema,
)
from tests.faults.tcp_proxy import TcpProxy

SCHEMA = pg_schema_name("t_fault_drill")  # this worker's and this run's own


def _poll(predicate, timeout: float):
    deadline = time.monotonic() + scaled(timeout)
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


@pytest.fixture
def pg_behind_proxy(tmp_path):
    base = Settings(database_url=PG_URL).sqlalchemy_url
    admin = create_engine(base)
    try:
        with admin.begin() as conn:
            create_pg_schema(conn, SCHEMA)
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    finally:
        admin.dispose()
    direct = pg_url_for_schema(SCHEMA)
    migrate.upgrade(Settings(database_url=direct).sqlalchemy_url)
    parts = urlsplit(PG_URL)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()
    proxied = direct.replace(f"{parts.hostname}:{parts.port or 5432}", f"127.0.0.1:{proxy.port}")
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=proxied,
        jwt_secret_value="d" * 48,
        rate_limit_enabled=False,
        environment="test",
        search_build_on_start=False,
    )
    yield settings, proxy
    proxy.close()
    drop_pg_schema(SCHEMA)


def test_database_outage_gives_fast_503_and_recovers(pg_behind_proxy):
    settings, proxy = pg_behind_proxy
    with TestClient(create_app(settings)) as c:
        assert c.get("/readyz").status_code == 200
        probe = "/api/v1/products/1/reviews"  # not served from the read cache
        assert c.get(probe).status_code == 404

        proxy.cut()
        started = time.monotonic()
        r = c.get(probe)
        elapsed = time.monotonic() - started
        print(f"503 after {elapsed * 1000:.0f} ms")  # refused connect: no pool/connect timeout
        assert r.status_code == 503, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert int(r.headers["retry-after"]) >= 1
        assert "Traceback" not in r.text
        ready = c.get("/readyz")
        assert ready.status_code == 503 and ready.json()["ready"] is False
        assert c.get("/healthz").status_code == 200  # alive, just not ready
        r = c.post(
            "/api/v1/auth/register", json={"email": "o@example.com", "password": "umbrella-owl-3"}
        )
        assert r.status_code == 503

        proxy.restore()
        assert _poll(lambda: c.get("/readyz").status_code == 200, timeout=20)
        assert c.get(probe).status_code == 404
        r = c.post(
            "/api/v1/auth/register", json={"email": "o@example.com", "password": "umbrella-owl-3"}
        )
        assert r.status_code == 201
