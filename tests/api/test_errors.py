"""Every error is problem+json with the right status, never a 500 for bad input."""

from __future__ import annotations


def _is_problem(r, status: int) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == status
    assert body["title"]


def test_malformed_json_is_400(client):
    r = client.post(
        "/api/v1/auth/register", content=b'{"email": ', headers={"content-type": "application/json"}
    )
    _is_problem(r, 400)


def test_wrong_types_are_422_with_locations(client):
    r = client.post("/api/v1/auth/register", json={"email": 5, "password": ["x"]})
    _is_problem(r, 422)
    assert {tuple(e["loc"]) for e in r.json()["errors"]} >= {
        ("body", "email"),
        ("body", "password"),
    }


def test_unknown_route_and_method(client):
    _is_problem(client.get("/api/v1/nothing-here"), 404)
    _is_problem(client.delete("/api/v1/categories"), 405)


def test_path_param_of_wrong_type(client):
    _is_problem(client.get("/api/v1/products/not-a-number"), 422)


def test_oversized_body_is_413(client):
    big = b'{"email": "' + b"a" * 2_000_000 + b'"}'
    r = client.post(
        "/api/v1/auth/register", content=big, headers={"content-type": "application/json"}
    )
    _is_problem(r, 413)


def test_oversized_chunked_body_is_413(client):
    def chunks():
        for _ in range(40):
            yield b"x" * 50_000

    r = client.post(
        "/api/v1/auth/register", content=chunks(), headers={"content-type": "application/json"}
    )
    _is_problem(r, 413)


def test_request_id_and_security_headers(client):
    r = client.get("/healthz", headers={"X-Request-ID": "abcdef123456"})
    assert r.headers["x-request-id"] == "abcdef123456"
    assert r.headers["x-content-type-options"] == "nosniff"
    r = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert r.headers["x-request-id"] != "bad id with spaces"
    assert len(r.headers["x-request-id"]) == 32
