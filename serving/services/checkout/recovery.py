"""Recovery: the routine that finishes or compensates sagas a crash left behind.

It runs once at start-up (before traffic matters) and then every
``recovery_interval_seconds`` in a thread, and is safe to run concurrently with requests and
with other workers: each fix is a conditional state transition, so whoever loses a race
simply skips the order. One pass:

1. orders still ``pending``/``reserved`` past their deadline → cancelled, stock released,
   and whatever the provider holds under the order's key voided or refunded;
2. dead orders (cancelled, payment_failed) whose payment is not settled → settled;
3. ``paid`` orders without a shipment → fulfilled;
4. the simulated carrier moves parcels along (label_created → in_transit → delivered);
5. idempotency keys past their 24 h are deleted.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, select

from serving.core import clock
from serving.core.background import BackgroundLoop
from serving.core.clock import utcnow
from serving.db.tables.orders import Order, OrderLine
from serving.db.tables.payments import Payment
from serving.db.tables.shipping import Shipment
from serving.services import shipping
from serving.services.checkout import idempotency
from serving.services.checkout import order_states as st
from serving.services.checkout.runtime import CheckoutRuntime
from serving.services.checkout.steps import compensate, fulfil, settle
from serving.services.infra import notifications
from serving.services.shop import inventory

log = logging.getLogger("storeloop.recovery")


#: In simulation mode, how far behind the latest simulated time an order may be and still be in
#: flight: the shoppers of one simulated day run side by side, hours of simulated time apart.
SIMULATION_GRACE = timedelta(days=1)


def run_once(rt: CheckoutRuntime) -> dict[str, int]:
    """One recovery pass; returns what it fixed (for logs and tests).

    In simulation mode (no simulated time set by the caller) the pass runs on the latest
    simulated time the shop has seen, not the wall clock: judged by the wall clock every
    simulated order in flight looked a month stale and was finished here, with shipments
    stamped a month after their orders, racing the checkout that was finishing it.
    """
    if rt.settings.simulation_mode and clock.simulated_override() is None:
        latest = clock.simulated_high_water()
        if latest is None:
            return dict.fromkeys(REPORT_KEYS, 0)  # no simulated request yet: nothing to judge
        token = clock.set_simulated_now(latest)
        try:
            return _run_once(rt, grace=SIMULATION_GRACE)
        finally:
            clock.reset_simulated_now(token)
    return _run_once(rt, grace=timedelta(0))


REPORT_KEYS = ("compensated", "settled", "fulfilled", "shipped", "delivered")


def _run_once(rt: CheckoutRuntime, *, grace: timedelta) -> dict[str, int]:
    now = utcnow()
    stale = now - timedelta(seconds=rt.settings.checkout_saga_timeout_seconds) - grace
    report = dict.fromkeys(REPORT_KEYS, 0)
    with rt.db.session() as s:
        stuck = s.execute(
            select(Order.id, Order.user_id).where(
                Order.status.in_(st.IN_FLIGHT),
                or_(Order.updated_at < stale, Order.reserved_until < now - grace),
            )
        ).all()
    for order in stuck:
        with rt.db.write_gate(), rt.db.session(write=True) as s:
            try:
                compensate(
                    s, order_id=order.id, user_id=order.user_id, reason="checkout did not finish"
                )
            except st.IllegalTransition:
                continue  # the request finished it meanwhile
            s.commit()
        rt.emit(
            "order_cancelled",
            user_id=order.user_id,
            order_id=order.id,
            props={"reason": "recovery"},
        )
        report["compensated"] += 1
        settle(rt, order.id)
    with rt.db.session() as s:
        unsettled = s.scalars(
            select(Order.id)
            .join(Payment, Payment.order_id == Order.id)
            .where(
                Order.status.in_((st.CANCELLED, st.PAYMENT_FAILED)),
                Payment.status.in_(("pending", "succeeded")),
            )
        ).all()
    for order_id in unsettled:
        if settle(rt, order_id):  # False while the provider is down: next pass tries again
            report["settled"] += 1
    with rt.db.session() as s:
        unshipped = s.scalars(
            select(Order.id)
            .outerjoin(Shipment, Shipment.order_id == Order.id)
            .where(Order.status == st.PAID, Order.updated_at < stale, Shipment.id.is_(None))
        ).all()
    for order_id in unshipped:
        with rt.db.write_gate(), rt.db.session(write=True) as s:
            try:
                fulfil(s, order_id=order_id)
            except st.IllegalTransition:
                continue
            s.commit()
        report["fulfilled"] += 1
    report.update(_carrier_tick(rt, now))
    with rt.db.write_gate(), rt.db.session(write=True) as s:
        idempotency.purge_expired(s)
    if any(report.values()):
        log.info("recovery pass: %s", report)
    return report


def ship_order(rt: CheckoutRuntime, *, order_id: str) -> bool:
    """fulfilled → shipped: the parcel leaves, reserved stock becomes sold. False if not due."""
    with rt.db.write_gate(), rt.db.session(write=True) as s:
        try:
            st.transition(s, order_id=order_id, to=st.SHIPPED, reason="carrier pickup")
        except st.IllegalTransition:
            s.rollback()
            raise
        parcel = shipping.advance(
            s, order_id=order_id, from_status="label_created", to_status="in_transit"
        )
        user_id = s.execute(select(Order.user_id).where(Order.id == order_id)).scalar_one()
        for line in s.execute(
            select(OrderLine.product_id, OrderLine.quantity)
            .where(OrderLine.order_id == order_id)
            .order_by(OrderLine.product_id)
        ):
            inventory.commit_sale(
                s, product_id=line.product_id, quantity=line.quantity, order_id=order_id
            )
        notifications.enqueue(
            s,
            kind="order_shipped",
            user_id=user_id,
            order_id=order_id,
            carrier=(parcel or {}).get("carrier", shipping.CARRIER),
            tracking=(parcel or {}).get("tracking", ""),
        )
        s.commit()
        rt.emit("order_shipped", user_id=user_id, order_id=order_id)
    return True


def deliver_order(rt: CheckoutRuntime, *, order_id: str) -> bool:
    with rt.db.write_gate(), rt.db.session(write=True) as s:
        st.transition(s, order_id=order_id, to=st.DELIVERED, reason="carrier delivered")
        shipping.advance(s, order_id=order_id, from_status="in_transit", to_status="delivered")
        user_id = s.execute(select(Order.user_id).where(Order.id == order_id)).scalar_one()
        notifications.enqueue(s, kind="order_delivered", user_id=user_id, order_id=order_id)
        s.commit()
    rt.emit("order_delivered", user_id=user_id, order_id=order_id)
    return True


def _carrier_tick(rt: CheckoutRuntime, now: Any) -> dict[str, int]:
    settings = rt.settings
    moved = {"shipped": 0, "delivered": 0}
    steps = (
        ("label_created", settings.carrier_in_transit_after_seconds, ship_order, "shipped"),
        ("in_transit", settings.carrier_delivered_after_seconds, deliver_order, "delivered"),
    )
    for from_status, after, step, name in steps:
        cutoff = now - timedelta(seconds=after)
        with rt.db.session() as s:
            due = s.scalars(
                select(Shipment.order_id).where(
                    Shipment.status == from_status, Shipment.updated_at < cutoff
                )
            ).all()
        for order_id in due:
            try:
                step(rt, order_id=order_id)
                moved[name] += 1
            except st.IllegalTransition:
                continue
    return moved


def recovery_loop(rt: CheckoutRuntime) -> BackgroundLoop:
    """:func:`run_once` now (the start-up recovery), then every ``recovery_interval_seconds``."""
    return BackgroundLoop(
        "checkout-recovery",
        lambda: run_once(rt),
        rt.settings.recovery_interval_seconds,
        run_first=True,
    )
