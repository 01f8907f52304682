"""Recovery in simulation mode runs on the simulated clock, not the wall clock.

Judged by the wall clock, every simulated order in flight (a month in the past) looked stale:
recovery finished or cancelled it while the checkout was finishing it, the checkout's batch
hit "UNIQUE constraint failed: shipments.order_id", and the shipment got a wall-clock time a
month after its order.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from serving.app import create_app
from serving.core import clock
from serving.db.tables.orders import Order
from serving.db.tables.shipping import Shipment
from serving.services.checkout import recovery
from serving.services.checkout.runtime import SimulatedCrash
from serving.services.checkout.service import runtime

from .conftest import order_body, tokenise

SIM_START = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


@pytest.fixture
def start() -> datetime:
    """A simulated time after any this process has seen (the high-water mark only grows)."""
    seen = clock.simulated_high_water()
    return max(SIM_START, seen + timedelta(days=3) if seen else SIM_START)


@pytest.fixture
def app(settings):
    return create_app(settings.model_copy(update={"simulation_mode": True}))


def _place_at(actor, body: dict, when: datetime):
    return actor.post(
        "/api/v1/orders",
        json=body,
        headers={"Idempotency-Key": uuid.uuid4().hex, "X-Sim-Time": when.isoformat()},
    )


def _order(app) -> tuple[str, datetime, datetime | None]:
    with app.state.components.db.session() as s:
        order = s.execute(select(Order.status, Order.updated_at, Order.id)).one()
        shipped = s.scalar(select(Shipment.created_at).where(Shipment.order_id == order.id))
    return order.status, order.updated_at, shipped


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def test_an_order_in_flight_in_simulated_time_is_left_to_its_checkout(
    app, client, customer, make_product, start
) -> None:
    rt = runtime(app)
    pid = make_product(3)
    rt.hooks["crash_after_reserve"] = ""
    try:
        with contextlib.suppress(SimulatedCrash):
            _place_at(customer, order_body(tokenise(client), [(pid, 1)]), start)
    finally:
        rt.hooks.pop("crash_after_reserve")
    assert _order(app)[0] == "reserved"
    # Other shoppers of the same simulated day are hours ahead: still in flight.
    clock.note_simulated(start + timedelta(hours=6))
    assert recovery.run_once(rt)["compensated"] == 0
    assert _order(app)[0] == "reserved"


def test_a_stuck_simulated_order_is_compensated_on_the_simulated_clock(
    app, client, customer, make_product, start
) -> None:
    rt = runtime(app)
    pid = make_product(3)
    when = start + timedelta(days=10)
    rt.hooks["crash_after_reserve"] = ""
    try:
        with contextlib.suppress(SimulatedCrash):
            _place_at(customer, order_body(tokenise(client), [(pid, 1)]), when)
    finally:
        rt.hooks.pop("crash_after_reserve")
    later = when + timedelta(days=2)
    clock.note_simulated(later)
    assert recovery.run_once(rt)["compensated"] == 1
    status, updated_at, _ = _order(app)
    assert status == "cancelled"
    # Stamped with simulated time, not today's date.
    assert _utc(updated_at) <= clock.simulated_high_water()
    assert _utc(updated_at) < datetime.now(UTC) - timedelta(days=30)


def test_simulated_orders_ship_in_simulated_time(
    app, client, customer, make_product, start
) -> None:
    rt = runtime(app)
    pid = make_product(3)
    when = start + timedelta(days=20)
    r = _place_at(customer, order_body(tokenise(client), [(pid, 1)]), when)
    assert r.status_code in (200, 201, 202), r.text
    clock.note_simulated(when + timedelta(hours=2))
    recovery.run_once(rt)
    _, _, shipped = _order(app)
    assert shipped is not None
    assert _utc(shipped) - when < timedelta(minutes=5)


def test_webhooks_of_simulated_orders_are_handled_in_simulated_time() -> None:
    """The provider's webhook for a simulated charge arrives on the simulated clock.

    Delivered on the wall clock, it moved simulated orders to paid (and on to a shipment)
    stamped with today's date, a month after their orders.
    """
    from serving.services.checkout.payments.webhooks import WebhookDispatcher

    seen: list[datetime] = []
    dispatcher = WebhookDispatcher(
        "whsec_test", receiver=lambda body, header: seen.append(clock.utcnow()), delay=0.05
    )
    dispatcher.start()
    when = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    token = clock.set_simulated_now(when)
    try:
        dispatcher.submit({"id": "evt_sim", "type": "payment_intent.succeeded"})
    finally:
        clock.reset_simulated_now(token)
    dispatcher.submit({"id": "evt_real", "type": "payment_intent.succeeded"})
    dispatcher.drain()
    dispatcher.stop()
    assert seen[0] == when
    assert seen[1] > datetime.now(UTC) - timedelta(minutes=5)
