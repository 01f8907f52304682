"""Health, readiness, metrics and rate limiting."""

from __future__ import annotations

from fastapi.testclient import TestClient

from serving.app import create_app
from serving.db import migrate


def test_healthz_and_readyz(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["ready"] is True


def test_readyz_refuses_a_schema_that_is_behind(settings, backend):
    migrate.downgrade(settings.sqlalchemy_url, "base")
    try:
        with TestClient(create_app(settings)) as c:
            r = c.get("/readyz")
            assert r.status_code == 503
            assert r.json()["ready"] is False
            assert "storeloop migrate" in r.json()["schema"]
    finally:
        migrate.upgrade(settings.sqlalchemy_url)


def test_readyz_reports_unreachable_database(tmp_path):
    from serving.core.config import Settings

    s = Settings(
        data_dir=tmp_path,
        database_url="postgresql://nobody@127.0.0.1:1/none",
        jwt_secret_value="s" * 40,
    )
    with TestClient(create_app(s)) as c:
        r = c.get("/readyz")
        assert r.status_code == 503
        assert r.json()["database"] == "unreachable"
        r = c.get("/api/v1/products/1")
        assert r.status_code == 503
        assert r.headers["content-type"] == "application/problem+json"
        assert "retry-after" in r.headers


def test_metrics_count_requests_by_route(client, small_catalog):
    pid = small_catalog["products"]["HP-1"]["id"]
    client.get(f"/api/v1/products/{pid}")
    text = client.get("/metrics").text
    assert 'route="/api/v1/products/{product_id}"' in text
    assert "storeloop_http_request_duration_seconds_bucket" in text


def test_rate_limit_gives_429_with_headers(settings):
    limited = settings.model_copy(
        update={"rate_limit_enabled": True, "rate_limit_per_second": 1.0, "rate_limit_burst": 5}
    )
    with TestClient(create_app(limited)) as c:
        statuses = [c.get("/api/v1/categories").status_code for _ in range(8)]
        assert statuses[:5] == [200] * 5
        assert 429 in statuses[5:]
        r = c.get("/api/v1/categories")
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) >= 1
        assert r.headers["ratelimit-limit"] == "5"
        assert r.headers["content-type"] == "application/problem+json"
        assert c.get("/healthz").status_code == 200  # probes are never limited


def test_jwt_secret_is_generated_and_kept(tmp_path):
    from serving.core.config import Settings

    a = Settings(data_dir=tmp_path)
    b = Settings(data_dir=tmp_path)
    assert a.jwt_secret == b.jwt_secret
    assert len(a.jwt_secret) >= 48
    assert (tmp_path / "jwt_secret").stat().st_mode & 0o077 == 0


def test_logs_are_json_with_request_id(client, capfd):
    import json
    import logging

    from serving.core.logging import configure_logging

    configure_logging("info")
    try:
        client.get("/api/v1/products/424242", headers={"X-Request-ID": "req-id-for-log-1"})
        lines = [line for line in capfd.readouterr().err.splitlines() if line.startswith("{")]
        entries = [json.loads(line) for line in lines]
        access = [e for e in entries if e["logger"] == "storeloop.access"]
        assert access and access[-1]["request_id"] == "req-id-for-log-1"
        assert access[-1]["status"] == 404
        assert access[-1]["route"] == "/api/v1/products/{product_id}"
    finally:
        logging.getLogger("storeloop").handlers.clear()
        logging.getLogger("storeloop").propagate = True
