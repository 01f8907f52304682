"""Drill: the payment provider gets slow, then unreachable, then comes back.

Pass: checkouts caught by the outage end ``payment_failed`` with their stock released and their
payment left for recovery to settle; after N consecutive timeouts/outages the circuit opens and
new checkouts get an immediate 503 problem+json with Retry-After that writes nothing (no order,
no reservation, no key); after the cool-down one probe goes through; when the provider is back
a retry with the same Idempotency-Key places the order and charges exactly once, and recovery
voids whatever the provider kept from the failed attempts (no second charge anywhere).
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from serving.db.tables.idempotency import IdempotencyKey
from serving.db.tables.orders import Order
from serving.db.tables.payments import Payment, SimPaymentIntent
from serving.services.checkout import recovery, service
from serving.services.shop import inventory
from tests.checkout.conftest import order_body, place, tokenise

PROBLEM_JSON = "application/problem+json"


class SteppedClock:
    """The breaker's monotonic clock, stepped by the test over the cool-down."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def settings(settings):
    settings.payment_provider_timeout_seconds = 0.05
    settings.payment_breaker_failures = 3
    settings.payment_breaker_reset_seconds = 30
    settings.recovery_interval_seconds = 3600  # the test runs recovery passes itself
    return settings


@pytest.fixture
def rt(app, client):
    runtime = service.runtime(app)
    runtime.provider.breaker.clock = SteppedClock()
    return runtime


def _stock(app, pid: int) -> dict:
    with app.state.components.db.session() as s:
        return inventory.stock_of(s, pid)


def _count(app, model) -> int:
    with app.state.components.db.session() as s:
        return s.scalar(select(func.count()).select_from(model))


def _payments(app) -> dict[str, str]:
    with app.state.components.db.session() as s:
        return {r.order_id: r.status for r in s.execute(select(Payment.order_id, Payment.status))}


def _intents(app) -> dict[str, tuple[str, int]]:
    """Provider intents by order: (status, amount kept = captured − refunded)."""
    with app.state.components.db.session() as s:
        rows = s.execute(select(SimPaymentIntent)).scalars().all()
        return {
            r.meta["order_id"]: (
                r.status,
                (r.amount_minor - r.amount_refunded) if r.status == "succeeded" else 0,
            )
            for r in rows
        }


def _assert_refused_fast(app, response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert int(response.headers["retry-after"]) >= 1
    problem = response.json()
    assert problem["type"].endswith("/payments-unavailable")
    assert problem["status"] == 503


def test_slow_provider_opens_the_circuit_and_recovers_without_double_charge(
    app, client, rt, customer, make_product
):
    pid = make_product(5)
    pm = tokenise(client)
    simulated, breaker = rt.provider.inner, rt.provider.breaker
    done = place(customer, order_body(pm, [(pid, 1)]), key="before-outage")
    assert done.status_code == 201

    simulated.latency_seconds = 1.0  # far beyond the 50 ms client timeout
    failed = [place(customer, order_body(pm, [(pid, 1)])) for _ in range(2)]
    for r in failed:
        assert r.status_code == 402, r.text
        assert r.json()["reason"] == "provider_timeout"
        order = customer.get(f"/api/v1/orders/{r.json()['order_id']}").json()
        assert order["status"] == "payment_failed"
    # Charge and look-up both timed out: 2 × 2 failures ≥ 3, the circuit is open.
    assert breaker.state == "open"
    assert _stock(app, pid)["reserved"] == 1  # only the order placed before the outage
    failed_ids = [r.json()["order_id"] for r in failed]
    # Nobody knows yet whether the slow charges landed: left for recovery, not marked failed.
    assert {_payments(app)[o] for o in failed_ids} == {"pending"}

    orders_before, keys_before = _count(app, Order), _count(app, IdempotencyKey)
    intents_before = _count(app, SimPaymentIntent)
    body = order_body(pm, [(pid, 1)])
    refused = place(customer, body, key="during-outage")
    _assert_refused_fast(app, refused)
    assert _count(app, Order) == orders_before
    assert _count(app, IdempotencyKey) == keys_before
    assert _count(app, SimPaymentIntent) == intents_before  # the provider was not called
    assert _stock(app, pid)["available"] == 4
    # A completed request retried during the outage still gets its stored answer.
    replay = place(customer, order_body(pm, [(pid, 1)]), key="before-outage")
    assert replay.status_code == 201 and replay.json()["id"] == done.json()["id"]

    # Recovery during the outage neither fails nor settles anything.
    report = recovery.run_once(rt)
    assert report["settled"] == 0
    assert {_payments(app)[o] for o in failed_ids} == {"pending"}

    simulated.latency_seconds = 0.0  # the provider is back …
    breaker.clock.now += 30  # … and the cool-down is over
    assert breaker.state == "half_open"
    again = place(customer, body, key="during-outage")  # same key as the refused attempt
    assert again.status_code == 201, again.text
    assert breaker.state == "closed"
    twice = place(customer, body, key="during-outage")
    assert twice.json()["id"] == again.json()["id"]
    assert twice.headers.get("idempotent-replayed") == "true"

    report = recovery.run_once(rt)
    assert report["settled"] == 2
    intents = _intents(app)
    # The slow attempts reached the provider and stayed "processing": now voided, no money.
    assert [intents[o] for o in failed_ids] == [("canceled", 0), ("canceled", 0)]
    paid = [done.json(), again.json()]
    assert {o["id"]: intents[o["id"]] for o in paid} == {
        o["id"]: ("succeeded", o["total_minor"]) for o in paid
    }
    assert len(intents) == 4  # one intent per order: nothing was charged twice
    assert {_payments(app)[o] for o in failed_ids} == {"failed"}
    assert _stock(app, pid)["reserved"] == 2


def test_unreachable_provider_probe_fails_then_succeeds(app, client, rt, customer, make_product):
    pid = make_product(5)
    pm = tokenise(client)
    simulated, breaker = rt.provider.inner, rt.provider.breaker
    simulated.down = True
    failed = [place(customer, order_body(pm, [(pid, 1)])) for _ in range(3)]
    assert [r.status_code for r in failed] == [402, 402, 402]
    assert {r.json()["reason"] for r in failed} == {"provider_unavailable"}
    assert breaker.state == "open"
    assert _stock(app, pid)["reserved"] == 0
    _assert_refused_fast(app, place(customer, order_body(pm, [(pid, 1)])))

    # Cool-down over, provider still down: the one probe fails and the circuit re-opens.
    breaker.clock.now += 30
    probe = place(customer, order_body(pm, [(pid, 1)]))
    assert probe.status_code == 402 and probe.json()["reason"] == "provider_unavailable"
    assert breaker.state == "open"
    _assert_refused_fast(app, place(customer, order_body(pm, [(pid, 1)])))

    simulated.down = False
    breaker.clock.now += 30
    ok = place(customer, order_body(pm, [(pid, 1)]), key=uuid.uuid4().hex)
    assert ok.status_code == 201
    assert breaker.state == "closed"
    report = recovery.run_once(rt)
    assert report["settled"] == 4  # the four failed attempts: nothing at the provider, void
    dead = [r.json()["order_id"] for r in [*failed, probe]]
    assert {_payments(app)[o] for o in dead} == {"void"}
    assert _intents(app) == {ok.json()["id"]: ("succeeded", ok.json()["total_minor"])}
    assert _stock(app, pid)["reserved"] == 1
