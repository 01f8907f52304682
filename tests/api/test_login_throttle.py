"""Login throttling: back-off per account and address, a limit per address (issue 18).

Ten wrong passwords used to lock the real owner out, while one address spraying 40 accounts was
never limited. Now the attacker's own (account, address) pair backs off, the owner at another
address still signs in, and one address failing for many accounts is limited.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.services.shop.login_throttle import Backoff, LoginThrottle, TooManyLogins

ATTACKER = ("203.0.113.7", 40000)
OWNER = ("198.51.100.20", 40001)


def _from(app, address: tuple[str, int]) -> TestClient:
    """A client at ``address`` on an app whose lifespan the ``client`` fixture already runs."""
    return TestClient(app, client=address)


def _try(client: TestClient, email: str, password: str) -> int:
    r = client.post("/api/v1/auth/token", data={"username": email, "password": password})
    return r.status_code


def test_attacker_guessing_does_not_lock_the_owner_out(app, customer):
    attacker, owner = _from(app, ATTACKER), _from(app, OWNER)
    statuses = [_try(attacker, customer.email, "guess-guess") for _ in range(12)]
    assert statuses[:10] == [401] * 10
    assert statuses[10:] == [429, 429]
    assert _try(attacker, customer.email, customer.password) == 429
    assert _try(owner, customer.email, customer.password) == 200


def test_spraying_many_accounts_from_one_address_is_limited(app, client):
    victims = [f"victim{i}@example.com" for i in range(40)]
    attacker, other = _from(app, ATTACKER), _from(app, OWNER)
    statuses = [_try(attacker, email, "Summer2024!") for email in victims]
    # 20 failures a minute per address leak away, so the limit bites at the 21st failure
    # or a few later on a slow machine; once it bites, the address waits.
    first = statuses.index(429)
    assert 20 <= first <= 30, statuses
    assert set(statuses[first:]) == {429}
    r = attacker.post(
        "/api/v1/auth/token", data={"username": "victim0@example.com", "password": "x" * 9}
    )
    assert "from this address" in r.json()["detail"]
    assert int(r.headers["retry-after"]) >= 1
    # Another address is not affected by the spray.
    assert _try(other, "victim1@example.com", "Summer2024!") == 401


def test_pair_backoff_doubles_and_a_success_clears_it():
    rule = Backoff(free=3, base=2.0, cap=10.0, decay=0.0, idle=100.0)
    throttle = LoginThrottle(pair=rule, address=None)
    now = 1000.0
    for _ in range(3):
        throttle.check("a@x", "1.1.1.1", now)
        throttle.failed("a@x", "1.1.1.1", now)
    with pytest.raises(TooManyLogins) as err:
        throttle.check("a@x", "1.1.1.1", now + 1.9)
    assert err.value.headers["Retry-After"] == "1"
    throttle.check("a@x", "1.1.1.1", now + 2.0)  # waited the base delay
    throttle.failed("a@x", "1.1.1.1", now + 2.0)  # fourth failure: 4 s
    with pytest.raises(TooManyLogins):
        throttle.check("a@x", "1.1.1.1", now + 5.9)
    throttle.check("a@x", "1.1.1.1", now + 6.0)
    throttle.failed("a@x", "1.1.1.1", now + 6.0)  # fifth: 8 s, then capped at 10
    throttle.check("a@x", "1.1.1.1", now + 14.0)
    throttle.failed("a@x", "1.1.1.1", now + 14.0)
    with pytest.raises(TooManyLogins):
        throttle.check("a@x", "1.1.1.1", now + 23.9)
    throttle.check("a@x", "2.2.2.2", now + 14.0)  # the same account elsewhere: free
    throttle.succeeded("a@x", "1.1.1.1", now + 24.0)
    throttle.check("a@x", "1.1.1.1", now + 24.0)
    throttle.failed("a@x", "1.1.1.1", now + 24.0)
    throttle.check("a@x", "1.1.1.1", now + 24.0)  # counting from zero again


def test_pair_is_forgotten_after_idle_memory():
    rule = Backoff(free=2, base=5.0, cap=5.0, decay=0.0, idle=60.0)
    throttle = LoginThrottle(pair=rule, address=None)
    throttle.failed("a@x", "1.1.1.1", 0.0)
    throttle.failed("a@x", "1.1.1.1", 0.0)
    with pytest.raises(TooManyLogins):
        throttle.check("a@x", "1.1.1.1", 1.0)
    throttle.failed("a@x", "1.1.1.1", 70.0)  # idle 65 s after the wait ended: forgotten
    throttle.check("a@x", "1.1.1.1", 70.0)


def test_address_failures_leak_away(settings):
    throttle = LoginThrottle(
        pair=Backoff(free=100, base=1, cap=1, decay=0, idle=60),
        address=Backoff(free=4, base=30.0, cap=30.0, decay=1.0, idle=600.0),
    )
    for i in range(4):
        throttle.failed(f"u{i}@x", "9.9.9.9", float(i))  # leaks 1/s: stays below 4
    throttle.check("u9@x", "9.9.9.9", 4.0)
    for i in range(4):
        throttle.failed(f"v{i}@x", "9.9.9.9", 10.0)
    with pytest.raises(TooManyLogins):
        throttle.check("u9@x", "9.9.9.9", 10.0)


def test_settings_reach_the_app_throttle(settings):
    app = create_app(settings.model_copy(update={"login_failures_per_address_per_minute": 0}))
    assert app.state.components.login_throttle.address is None
    assert app.state.components.login_throttle.pair.free == settings.login_attempts_per_minute
