"""Accounts: registration, tokens, roles and the ways a token can be forged."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import jwt

from tests.conftest import login


def test_register_login_and_me(client):
    r = client.post(
        "/api/v1/auth/register", json={"email": "Ada@Example.com", "password": "kestrel-harbour-7"}
    )
    assert r.status_code == 201
    assert r.json()["email"] == "ada@example.com"
    assert r.json()["role"] == "customer"
    assert "password" not in r.text and "hash" not in r.text
    token = login(client, "ada@example.com", "kestrel-harbour-7")
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json()["email"] == "ada@example.com"


def test_duplicate_email_is_conflict_whatever_the_case(client):
    body = {"email": "bob@example.com", "password": "kestrel-harbour-7"}
    assert client.post("/api/v1/auth/register", json=body).status_code == 201
    r = client.post("/api/v1/auth/register", json={**body, "email": "BOB@example.com"})
    assert r.status_code == 409
    assert r.headers["content-type"] == "application/problem+json"


def test_wrong_password_is_401_problem(client, customer):
    r = client.post(
        "/api/v1/auth/token", data={"username": customer.email, "password": "nope-nope"}
    )
    assert r.status_code == 401
    assert r.json()["status"] == 401
    assert r.headers["content-type"] == "application/problem+json"


def test_me_without_token_is_401(client):
    r = client.get("/api/v1/me")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"


def test_role_cannot_be_set_by_mass_assignment(client):
    r = client.post(
        "/api/v1/auth/register",
        json={"email": "eve@example.com", "password": "kestrel-harbour-7", "role": "admin"},
    )
    assert r.status_code == 422
    r = client.post(
        "/api/v1/auth/register",
        json={"email": "eve@example.com", "password": "kestrel-harbour-7", "id": 1},
    )
    assert r.status_code == 422


def _claims(customer_token: str) -> dict:
    return jwt.decode(customer_token, options={"verify_signature": False})


def test_alg_none_token_refused(client, customer):
    claims = _claims(customer.token)
    forged = jwt.encode({**claims, "role": "admin"}, key=None, algorithm="none")
    assert (
        client.get("/api/v1/me", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    )


def test_wrong_signature_refused(client, customer):
    claims = _claims(customer.token)
    forged = jwt.encode(claims, "x" * 48, algorithm="HS256")
    assert (
        client.get("/api/v1/me", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    )


def test_tampered_role_refused(client, customer):
    header, payload, signature = customer.token.split(".")
    import base64
    import json

    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "admin"
    new_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    forged = f"{header}.{new_payload}.{signature}"
    r = client.get("/api/v1/me", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401
    r = client.post(
        "/api/v1/categories",
        json={"slug": "x", "name": "X"},
        headers={"Authorization": f"Bearer {forged}"},
    )
    assert r.status_code == 401


def test_expired_token_refused(app, client, customer):
    claims = _claims(customer.token)
    past = datetime.now(UTC) - timedelta(hours=2)
    token, _ = app.state.components.tokens.issue(
        user_id=int(claims["sub"]), role="customer", now=past
    )
    r = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    assert "expired" in r.json()["detail"]


def test_brute_force_login_is_throttled(client, customer):
    statuses = []
    for _ in range(12):
        r = client.post(
            "/api/v1/auth/token", data={"username": customer.email, "password": "guess-guess"}
        )
        statuses.append(r.status_code)
    assert statuses[:10] == [401] * 10
    assert statuses[-1] == 429
    assert int(r.headers["retry-after"]) >= 1
    # Even the right password is refused while the account is throttled.
    r = client.post(
        "/api/v1/auth/token", data={"username": customer.email, "password": customer.password}
    )
    assert r.status_code == 429


def test_anonymous_session_is_linked_at_login(app, client, customer):
    sid = "anon-session-0123456789"
    r = client.post(
        "/api/v1/auth/token",
        data={"username": customer.email, "password": customer.password},
        headers={"X-Session-Id": sid},
    )
    assert r.status_code == 200
    from serving.db.tables import SessionLink

    with app.state.components.db.session() as s:
        link = s.get(SessionLink, sid)
        assert link is not None
        assert link.user_id == int(_claims(customer.token)["sub"])


def test_token_lifetime_is_short(client, customer):
    claims = _claims(customer.token)
    assert claims["exp"] - claims["iat"] <= 60 * 60
    assert claims["exp"] > time.time()


def test_nul_in_the_login_form_is_refused_alike_on_every_database(client):
    """Regression (issue 18, found in the audit): a NUL in the form's username was a 401 on
    SQLite and a misleading 422 "A value is out of range" on PostgreSQL (the driver refused
    it). Both now answer as JSON bodies do: 422 naming the field and the reason."""
    r = client.post(
        "/api/v1/auth/token", data={"username": "a\u0000b@example.com", "password": "x" * 10}
    )
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    (error,) = r.json()["errors"]
    assert error["loc"] == ["body", "username"]
    assert "NUL characters (U+0000)" in error["msg"]
    r = client.post(
        "/api/v1/auth/token", data={"username": "a@example.com", "password": "x\u0000" * 5}
    )
    assert r.status_code == 401  # a password is hashed, never stored: no NUL rule for it
