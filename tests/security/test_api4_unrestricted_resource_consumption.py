"""API4:2023 Unrestricted Resource Consumption: every page, body, batch and rate is bounded.

Covered elsewhere and not repeated: 413 for big and chunked bodies
(``tests/api/test_errors.py``), the per-client 429 with Retry-After
(``tests/api/test_operations.py::test_rate_limit_gives_429_with_headers``), the Redis-shared
bucket (``tests/api/test_rate_limit_redis.py``). This module enumerates the schema so that every
list parameter, array and string of every route is checked, new ones included.
"""

from __future__ import annotations

import orjson
from fastapi.testclient import TestClient

from serving.app import create_app
from tests.security.conftest import json_body_schema, schema_operations, walk_schema

PAGE_PARAMS = {"limit", "k", "page_size", "per_page", "size"}
MAX_PAGE = 500


def test_api4_every_page_size_parameter_is_capped(client):
    schema = client.get("/openapi.json").json()
    seen = 0
    for (method, path), op in schema_operations(schema).items():
        for param in op.get("parameters") or ():
            if param["name"] in PAGE_PARAMS:
                bound = param["schema"].get("maximum")
                assert bound is not None and bound <= MAX_PAGE, (method, path, param["name"])
                seen += 1
    assert seen >= 8


def test_api4_page_size_over_the_cap_is_refused(client, customer):
    for url in (
        "/api/v1/products?limit=101",
        "/api/v1/search?q=a&limit=1000",
        "/api/v1/recommendations/popular?k=101",
        "/api/v1/products/1/reviews?limit=100000",
    ):
        r = client.get(url)
        assert r.status_code == 422, url
    assert customer.get("/api/v1/orders?limit=101").status_code == 422


def test_api4_every_array_and_string_in_request_bodies_is_bounded(client):
    schema = client.get("/openapi.json").json()
    unbounded = []
    for (method, path), op in schema_operations(schema).items():
        body = json_body_schema(op)
        if body is None or (method, path) == ("POST", "/api/v1/events"):
            continue  # the event batch is bounded by count and bytes, tested below
        for where, node in walk_schema(schema, body):
            if node.get("type") == "array" and "maxItems" not in node:
                unbounded.append((method, path, where))
            if node.get("type") == "object" and "additionalProperties" in node:
                extra = node["additionalProperties"]
                if isinstance(extra, dict) and "maxProperties" not in node:
                    unbounded.append((method, path, where))
            if node.get("type") == "string" and not (
                "maxLength" in node or "pattern" in node or "enum" in node or "format" in node
            ):
                unbounded.append((method, path, where))
    assert unbounded == []


def test_api4_every_query_string_parameter_is_bounded(client):
    schema = client.get("/openapi.json").json()
    unbounded = []
    for (method, path), op in schema_operations(schema).items():
        for param in op.get("parameters") or ():
            if param["in"] not in ("query", "header"):
                continue
            # Items of repeatable parameters are bounded by the server's request-line limit
            # (h11: 16 KiB of head); the count of repeats and scalar strings are checked here.
            for _, node in walk_schema(schema, param["schema"]):
                if node.get("type") == "array" and "maxItems" not in node:
                    unbounded.append((method, path, param["name"]))
            for node in [param["schema"], *param["schema"].get("anyOf", [])]:
                if node.get("type") == "string" and not (
                    "maxLength" in node or "pattern" in node or "enum" in node
                ):
                    unbounded.append((method, path, param["name"]))
    assert unbounded == []


def test_api4_event_batches_are_capped_by_count_and_bytes(settings):
    small = settings.model_copy(update={"event_batch_max_count": 3, "event_batch_max_bytes": 4000})
    with TestClient(create_app(small)) as c:
        event = {
            "event_id": "00000000-0000-4000-8000-000000000001",
            "type": "page_view",
            "ts": "2026-01-01T00:00:00Z",
            "session_id": "sess-0123456789abcdef",
            "props": {"page": "home"},
        }
        too_many = c.post("/api/v1/events", content=orjson.dumps({"events": [event] * 4}))
        assert too_many.status_code == 413
        padded = {"events": [{**event, "props": {"page": "x" * 5000}}]}
        too_big = c.post("/api/v1/events", content=orjson.dumps(padded))
        assert too_big.status_code == 413
        assert too_big.headers["content-type"] == "application/problem+json"


def test_api4_login_is_rate_limited_like_every_route(settings):
    limited = settings.model_copy(
        update={"rate_limit_enabled": True, "rate_limit_per_second": 1.0, "rate_limit_burst": 3}
    )
    with TestClient(create_app(limited)) as c:
        statuses = [
            c.post(
                "/api/v1/auth/register", json={"email": f"r{i}@example.com", "password": "p"}
            ).status_code
            for i in range(6)
        ]
        assert statuses[:3] == [422] * 3 and 429 in statuses[3:]
