"""The verified-token cache (core/security.py) and the caller row cache
(services/shop/caller_cache.py).

Both only change how often a token's HMAC is computed and a user's row is read: an expired,
tampered or foreign-key token is still refused, and a user deactivated or demoted by this
process is refused at once (by another process, within ``auth_user_cache_seconds``).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import create_engine, text, update

from serving.core import security
from serving.core.errors import Unauthorized
from serving.core.security import TokenService
from serving.db.tables import User
from serving.services.shop import caller_cache

SECRET = "s" * 48


def _count_decodes(monkeypatch) -> list[str]:
    calls: list[str] = []
    real = security.jwt.decode

    def counting(token, *args, **kwargs):
        calls.append(token)
        return real(token, *args, **kwargs)

    monkeypatch.setattr(security.jwt, "decode", counting)
    return calls


def _tamper(token: str) -> str:
    head, payload, sig = token.split(".")
    return f"{head}.{payload}.{sig[:-2]}{'AA' if sig[-2:] != 'AA' else 'BB'}"


def test_verified_token_is_decoded_once(monkeypatch):
    tokens = TokenService(SECRET)
    token, _ = tokens.issue(user_id=7, role="customer", now=datetime.now(UTC))
    decodes = _count_decodes(monkeypatch)
    assert tokens.verify(token).user_id == 7
    assert tokens.verify(token).user_id == 7
    assert decodes == [token]


def test_cached_token_is_refused_once_expired(monkeypatch):
    tokens = TokenService(SECRET, minutes=30)
    now = datetime.now(UTC)
    token, _ = tokens.issue(user_id=7, role="customer", now=now)
    tokens.verify(token)
    decodes = _count_decodes(monkeypatch)
    later = (now + timedelta(minutes=30, seconds=1)).timestamp()
    monkeypatch.setattr(security, "time", SimpleNamespace(time=lambda: later))
    with pytest.raises(Unauthorized, match="expired"):
        tokens.verify(token)
    assert decodes == []  # refused by the cache's own expiry check
    monkeypatch.undo()
    # Dropped from the cache: back in real time it is decoded (and accepted) again.
    decodes = _count_decodes(monkeypatch)
    tokens.verify(token)
    assert decodes == [token]


def test_tampered_token_never_reaches_the_cache():
    tokens = TokenService(SECRET)
    good, _ = tokens.issue(user_id=7, role="customer", now=datetime.now(UTC))
    tokens.verify(good)
    forged = _tamper(good)
    foreign, _ = TokenService("f" * 48).issue(user_id=7, role="admin", now=datetime.now(UTC))
    for bad in (forged, foreign, good + "x", "not-a-jwt"):
        for _ in range(2):  # the second try is no different from the first
            with pytest.raises(Unauthorized):
                tokens.verify(bad)
    assert list(tokens._verified) == [good]


def test_token_cache_is_bounded_and_can_be_turned_off(monkeypatch):
    tokens = TokenService(SECRET, cache_entries=3)
    now = datetime.now(UTC)
    issued = [tokens.issue(user_id=i, role="customer", now=now)[0] for i in range(1, 6)]
    for token in issued:
        tokens.verify(token)
    assert list(tokens._verified) == issued[-3:]

    off = TokenService(SECRET, cache_entries=0)
    decodes = _count_decodes(monkeypatch)
    off.verify(issued[0])
    off.verify(issued[0])
    assert len(decodes) == 2


def _deactivate(app, email: str) -> None:
    with app.state.components.db.session(write=True) as s:
        s.execute(update(User).where(User.email == email).values(is_active=False))
        s.commit()


def test_deactivation_in_this_process_is_seen_at_once_by_every_caller_check(app, customer):
    for path in ("/api/v1/me", "/api/v1/orders"):
        assert customer.get(path).status_code == 200, path
    assert len(app.state.components.callers) == 1  # the row is cached…
    _deactivate(app, customer.email)
    assert len(app.state.components.callers) == 0  # …and dropped by the write
    assert customer.get("/api/v1/orders").status_code == 401  # deps.CallerId
    assert customer.get("/api/v1/me").status_code == 401  # deps.CurrentUser
    r = customer.get("/api/v1/recommendations/users/1")  # recommendations.get_caller
    assert r.status_code == 401


def test_raw_sql_and_orm_writes_to_users_drop_the_cache(app, client, admin):
    assert admin.post("/api/v1/categories", json={"slug": "a", "name": "A"}).status_code == 201
    with app.state.components.db.engine.begin() as conn:
        conn.execute(text("UPDATE users SET role = 'customer'"))
    assert admin.post("/api/v1/categories", json={"slug": "b", "name": "B"}).status_code == 403
    with app.state.components.db.session(write=True) as s:
        s.query(User).one().role = "admin"  # an ORM flush
        s.commit()
    assert admin.post("/api/v1/categories", json={"slug": "c", "name": "C"}).status_code == 201


def test_deactivation_by_another_process_takes_effect_after_the_ttl(app, customer, monkeypatch):
    assert customer.get("/api/v1/orders").status_code == 200
    # Another worker: its own engine, so none of this process's hooks see the write.
    other = create_engine(app.state.components.db.engine.url)
    with other.begin() as conn:
        conn.execute(update(User).where(User.email == customer.email).values(is_active=False))
    other.dispose()
    assert len(app.state.components.callers) == 1
    assert customer.get("/api/v1/orders").status_code == 200  # the documented lag
    later = time.monotonic() + app.state.components.settings.auth_user_cache_seconds + 0.01
    monkeypatch.setattr(caller_cache, "time", SimpleNamespace(monotonic=lambda: later))
    assert customer.get("/api/v1/orders").status_code == 401
    assert customer.get("/api/v1/me").status_code == 401


def test_user_cache_off_reads_every_time(settings, customer_factory_app):
    app, customer = customer_factory_app(settings.model_copy(update={"auth_user_cache_seconds": 0}))
    assert customer.get("/api/v1/orders").status_code == 200
    assert len(app.state.components.callers) == 0
    other = create_engine(app.state.components.db.engine.url)
    with other.begin() as conn:
        conn.execute(update(User).values(is_active=False))
    other.dispose()
    assert customer.get("/api/v1/orders").status_code == 401


def test_current_user_is_a_fresh_detached_user_without_the_password_hash(app, customer):
    from sqlalchemy.orm.exc import DetachedInstanceError

    from serving.api.deps import get_caller, get_optional_user

    request = SimpleNamespace(app=app, state=SimpleNamespace())

    async def current_user():
        return await get_optional_user(await get_caller(request, customer.token))

    one = asyncio.run(current_user())
    two = asyncio.run(current_user())
    assert one is not two
    assert (one.email, one.role, one.is_active) == (customer.email, "customer", True)
    assert request.state.user_id == one.id
    with pytest.raises(DetachedInstanceError):
        _ = one.password_hash


@pytest.fixture
def customer_factory_app():
    from fastapi.testclient import TestClient

    from serving.app import create_app
    from tests.conftest import ShopActor, login

    clients = []

    def _make(settings):
        app = create_app(settings)
        client = TestClient(app).__enter__()
        clients.append(client)
        email, password = "solo@example.com", "correct-horse-1"
        r = client.post("/api/v1/auth/register", json={"email": email, "password": password})
        assert r.status_code == 201, r.text
        return app, ShopActor(client, email, password, login(client, email, password))

    yield _make
    for client in clients:
        client.__exit__(None, None, None)
