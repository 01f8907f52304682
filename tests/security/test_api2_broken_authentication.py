"""API2:2023 Broken Authentication.

Already covered in ``tests/api/test_auth.py`` (not repeated here): expired tokens
(``test_expired_token_refused``), short lifetime (``test_token_lifetime_is_short``), brute force
on one account (``test_brute_force_login_is_throttled``), ``alg: none``, wrong signature and a
tampered role. This module adds the gaps around them.
"""

from __future__ import annotations

from sqlalchemy import update

from serving.db.tables import User


def test_api2_throttle_is_per_account_whatever_the_spelling(client, customer):
    """Case and whitespace variants of one email count against the same account."""
    local, domain = customer.email.split("@")
    spellings = [customer.email, customer.email.upper(), f"{local.title()}@{domain.upper()}"]
    statuses = []
    for i in range(12):
        r = client.post(
            "/api/v1/auth/token",
            data={"username": spellings[i % len(spellings)], "password": "wrong-guess"},
        )
        statuses.append(r.status_code)
    assert 429 in statuses, statuses
    assert statuses.index(429) <= 10


def test_api2_password_spray_from_one_client_is_rate_limited(settings, make_customer):
    """Many accounts, one guess each: the per-client token bucket stops the spray."""
    from fastapi.testclient import TestClient

    from serving.app import create_app

    limited = settings.model_copy(
        update={"rate_limit_enabled": True, "rate_limit_per_second": 1.0, "rate_limit_burst": 10}
    )
    with TestClient(create_app(limited)) as c:
        statuses = [
            c.post(
                "/api/v1/auth/token",
                data={"username": f"victim{i}@example.com", "password": "Summer2024!"},
            ).status_code
            for i in range(15)
        ]
    assert set(statuses[:10]) == {401}
    assert 429 in statuses[10:]


def test_api2_deactivated_user_token_stops_working_at_once(app, client, customer):
    assert customer.get("/api/v1/me").status_code == 200
    with app.state.components.db.session(write=True) as s:
        s.execute(update(User).where(User.email == customer.email).values(is_active=False))
        s.commit()
    assert customer.get("/api/v1/me").status_code == 401
    assert customer.get("/api/v1/orders").status_code == 401
    r = client.post(
        "/api/v1/auth/token", data={"username": customer.email, "password": customer.password}
    )
    assert r.status_code == 401


def test_api2_token_only_in_the_authorization_header(client, customer):
    assert client.get(f"/api/v1/me?access_token={customer.token}").status_code == 401
    client.cookies.set("access_token", customer.token)
    try:
        assert client.get("/api/v1/me").status_code == 401
    finally:
        client.cookies.clear()
    assert client.get("/api/v1/me", headers={"Authorization": customer.token}).status_code == 401


def test_api2_weak_passwords_and_unknown_emails_do_not_leak(client, customer):
    r = client.post("/api/v1/auth/register", json={"email": "w@example.com", "password": "short"})
    assert r.status_code == 422
    unknown = client.post(
        "/api/v1/auth/token", data={"username": "nobody@example.com", "password": "x" * 10}
    )
    wrong = client.post(
        "/api/v1/auth/token", data={"username": customer.email, "password": "x" * 10}
    )
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json()["detail"] == wrong.json()["detail"]
