"""With REDIS_URL set, two app instances (two workers) enforce one shared limit."""

from __future__ import annotations

import os
import uuid

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app

pytestmark = pytest.mark.redis

REDIS_URL = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def redis_url() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception as exc:  # noqa: BLE001
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"Redis at {REDIS_URL} is unreachable: {exc}")
        pytest.skip(f"Redis at {REDIS_URL} is unreachable: {exc}")
    return REDIS_URL


def test_two_workers_share_one_bucket(settings, redis_url):
    shared = settings.model_copy(
        update={
            "redis_url": redis_url,
            "rate_limit_enabled": True,
            "rate_limit_per_second": 0.5,
            "rate_limit_burst": 6,
        }
    )
    first, second = create_app(shared), create_app(shared)
    # A fresh key prefix per test run so earlier runs' buckets don't interfere.
    prefix = f"storeloop:test:{uuid.uuid4().hex}:"
    first.state.components.rate_buckets.prefix = prefix
    second.state.components.rate_buckets.prefix = prefix
    with TestClient(first) as a, TestClient(second) as b:
        statuses = []
        for i in range(10):
            client = a if i % 2 == 0 else b
            statuses.append(client.get("/api/v1/categories").status_code)
    assert statuses.count(200) == 6
    assert statuses[6:] == [429] * 4


def test_two_workers_share_one_review_bucket(settings, redis_url, small_catalog):
    """Review spam spread over workers still meets one per-account limit (docs/security.md)."""
    from tests.conftest import ShopActor, login

    shared = settings.model_copy(update={"redis_url": redis_url, "review_burst": 3})
    first, second = create_app(shared), create_app(shared)
    prefix = f"storeloop:test:{uuid.uuid4().hex}:"
    first.state.components.review_limiter.prefix = prefix
    second.state.components.review_limiter.prefix = prefix
    pids = [p["id"] for p in small_catalog["products"].values()]
    with TestClient(first) as a, TestClient(second) as b:
        email, password = f"{uuid.uuid4().hex[:8]}@example.com", "correct-horse-1"
        r = a.post(
            "/api/v1/auth/register",
            json={"email": email, "password": password, "full_name": "Spam Bot"},
        )
        assert r.status_code == 201, r.text
        token = login(a, email, password)
        actors = [ShopActor(a, email, password, token), ShopActor(b, email, password, token)]
        statuses = [
            actors[i % 2].post(f"/api/v1/products/{pid}/reviews", json={"rating": 1}).status_code
            for i, pid in enumerate(pids)
        ]
    assert statuses == [201, 201, 201, 429, 429]


def test_two_workers_share_login_backoff(settings, redis_url):
    """Guesses spread over workers meet one back-off per account and address (issue 18)."""
    shared = settings.model_copy(update={"redis_url": redis_url, "login_attempts_per_minute": 4})
    first, second = create_app(shared), create_app(shared)
    prefix = f"storeloop:test:{uuid.uuid4().hex}:"
    first.state.components.login_throttle.prefix = prefix
    second.state.components.login_throttle.prefix = prefix
    with TestClient(first) as a, TestClient(second) as b:
        email, password = f"{uuid.uuid4().hex[:8]}@example.com", "correct-horse-1"
        assert (
            a.post("/api/v1/auth/register", json={"email": email, "password": password}).status_code
            == 201
        )
        statuses = [
            (a if i % 2 == 0 else b)
            .post("/api/v1/auth/token", data={"username": email, "password": "guess-guess"})
            .status_code
            for i in range(6)
        ]
        assert statuses == [401] * 4 + [429] * 2
        # The owner at another address is not locked out, on either worker.
        owner = TestClient(second, client=("198.51.100.20", 1))
        r = owner.post("/api/v1/auth/token", data={"username": email, "password": password})
        assert r.status_code == 200, r.text


def test_two_workers_share_one_event_quota(settings, redis_url):
    """Events spread over workers meet one per-session quota (issue 18)."""
    shared = settings.model_copy(
        update={
            "redis_url": redis_url,
            "rate_limit_enabled": True,
            "rate_limit_burst": 1000,
            "event_quota_session_events_per_minute": 20,
        }
    )
    first, second = create_app(shared), create_app(shared)
    session = f"quota-{uuid.uuid4().hex}"
    batch = {
        "events": [
            {
                "event_id": str(uuid.uuid4()),
                "type": "product_view",
                "client_ts": "2026-01-02T03:04:05Z",
                "product_id": 1,
            }
            for _ in range(5)
        ]
    }
    with TestClient(first) as a, TestClient(second) as b:
        statuses = [
            (a if i % 2 == 0 else b)
            .post("/api/v1/events", json=batch, headers={"X-Session-Id": session})
            .status_code
            for i in range(6)
        ]
    assert statuses == [202] * 4 + [429] * 2
