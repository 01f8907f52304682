"""The saga's shared steps: what the request, the batch, webhooks, recovery and the admin's
review all do to an order, each inside the caller's transaction unless it says otherwise.

* :class:`Outcome`: a final answer of POST /orders, stored under the Idempotency-Key
  (:func:`store_outcome`, statement :data:`KEY_DONE`);
* :func:`fulfil` (paid → fulfilled, or held for a fraud review), :func:`release_lines`,
  :func:`compensate` (→ cancelled), :func:`settle` (make the provider agree with a dead order);
* the prebuilt statements the per-order and the batched T2 share (:data:`PAYMENT_SUCCEEDED`,
  :data:`CART_CLEAR`) and the saga's clock, :func:`now`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.orm import Session

from serving.core.clock import utcnow
from serving.core.errors import ProblemError
from serving.db.tables.cart import CartItem
from serving.db.tables.idempotency import IdempotencyKey
from serving.db.tables.orders import Order, OrderLine
from serving.db.tables.payments import Payment
from serving.services import shipping
from serving.services.checkout import holds
from serving.services.checkout import order_states as st
from serving.services.checkout.payments import (
    Intent,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
)
from serving.services.checkout.runtime import CheckoutRuntime
from serving.services.infra import notifications
from serving.services.marketplace import fulfilment as marketplace
from serving.services.pricing import at_checkout
from serving.services.shop import inventory

log = logging.getLogger("storeloop.checkout")


@dataclass(frozen=True)
class Outcome:
    """A final answer of POST /orders, as stored under the idempotency key."""

    status: int
    body: dict[str, Any]
    replayed: bool = False


def problem_outcome(problem: ProblemError) -> Outcome:
    return Outcome(problem.status, problem.to_dict())


def cancelled_problem(order_id: str) -> ProblemError:
    return ProblemError(
        409,
        "Order cancelled",
        f"Order {order_id} was cancelled before payment completed; any charge is refunded",
        type_="https://storeloop.dev/problems/order-cancelled",
        order_id=order_id,
    )


_CART = CartItem.__table__
_PAYMENTS = Payment.__table__
_KEYS = IdempotencyKey.__table__
PAYMENT_SUCCEEDED = (
    update(_PAYMENTS)
    .where(_PAYMENTS.c.order_id == bindparam("b_order_id"))
    .values(status="succeeded", intent_id=bindparam("b_intent_id"), updated_at=bindparam("b_now"))
)
KEY_DONE = (
    update(_KEYS)
    .where(_KEYS.c.user_id == bindparam("b_user_id"), _KEYS.c.key == bindparam("b_key"))
    .values(
        status="done",
        response_status=bindparam("b_status"),
        response_body=bindparam("b_body"),
        order_id=bindparam("b_order_id"),
    )
)
CART_CLEAR = delete(_CART).where(
    _CART.c.owner_key == bindparam("b_owner"),
    _CART.c.product_id.in_(bindparam("b_ids", expanding=True)),
)


def now_utc() -> datetime:
    return utcnow().astimezone(UTC)


def set_payment(session: Session, order_id: str, intent: Intent | None, **values: Any) -> None:
    if intent is not None:
        values.setdefault("intent_id", intent.id)
    session.execute(
        update(Payment).where(Payment.order_id == order_id).values(updated_at=utcnow(), **values)
    )


def fulfil(session: Session, *, order_id: str) -> None:
    """paid → fulfilled: label the parcel, queue the confirmation, empty the cart. No commit."""
    order = session.execute(
        select(Order.user_id, Order.total_minor, Order.currency, Order.from_cart).where(
            Order.id == order_id
        )
    ).one()
    if holds.hold_if_suspicious(session, order_id=order_id):
        return  # paid, held for a fraud review: an admin releases or cancels it
    shipping.create_shipment(session, order_id=order_id)
    st.transition(session, order_id=order_id, to=st.FULFILLED, only_from={st.PAID}, reason="label")
    marketplace.open_parcels(session, order_id=order_id)  # a parcel and a sale per seller
    notifications.enqueue(
        session,
        kind="order_confirmed",
        user_id=order.user_id,
        order_id=order_id,
        total=f"{order.total_minor / 100:.2f}",
        currency=order.currency,
    )
    if order.from_cart:
        ordered = select(OrderLine.product_id).where(OrderLine.order_id == order_id)
        session.execute(
            delete(CartItem).where(
                CartItem.owner_key == f"u:{order.user_id}", CartItem.product_id.in_(ordered)
            )
        )


def release_lines(session: Session, *, order_id: str, reason: str) -> None:
    lines = session.execute(
        select(OrderLine.product_id, OrderLine.quantity)
        .where(OrderLine.order_id == order_id)
        .order_by(OrderLine.product_id)
    ).all()
    for line in lines:
        inventory.release(
            session,
            product_id=line.product_id,
            quantity=line.quantity,
            order_id=order_id,
            reason=reason,
        )
    # Whatever gives the stock back gives the promotions' uses back too (once).
    at_checkout.release(session, order_id=order_id, now=utcnow())


def store_outcome(
    session: Session, user_id: int, key: str | None, outcome: Outcome, order_id: str | None
) -> None:
    """Record the final response under the key (the transaction that made it final)."""
    if key is not None:
        session.connection().execute(
            KEY_DONE,
            {
                "b_user_id": user_id,
                "b_key": key,
                "b_status": outcome.status,
                "b_body": outcome.body,
                "b_order_id": order_id,
            },
        )


def compensate(session: Session, *, order_id: str, user_id: int, reason: str) -> None:
    """order → cancelled, reservation released, parcel stopped, email queued. No commit."""
    previous = st.transition(
        session,
        order_id=order_id,
        to=st.CANCELLED,
        only_from={st.PENDING, st.RESERVED, st.PAID, st.FULFILLED},
        reason=reason,
    )
    if previous in st.HOLDS_STOCK:
        release_lines(session, order_id=order_id, reason="cancel")
    marketplace.reverse_order(session, order_id=order_id)  # the sellers' sale undone
    shipping.advance(session, order_id=order_id, from_status="label_created", to_status="cancelled")
    notifications.enqueue(
        session, kind="order_cancelled", user_id=user_id, order_id=order_id, reason=reason
    )


def settle(rt: CheckoutRuntime, order_id: str) -> bool:
    """Make the provider agree with a dead order: void what is pending, refund what was taken.

    Asks the provider by the derived key rather than trusting our payment row, because the
    row may predate a charge that a crashed or slow request made. Safe to run any number of
    times: the refund carries its own idempotency key. False when the provider could not be
    reached: the payment row stays unsettled and the recovery loop tries again.
    """
    try:
        _settle(rt, order_id)
    except (ProviderTimeout, ProviderUnavailable) as exc:
        log.warning("could not settle %s with the provider yet: %s", order_id, exc)
        return False
    return True


def _settle(rt: CheckoutRuntime, order_id: str) -> None:
    with rt.db.session() as session:
        order = session.execute(
            select(Order.status, Order.user_id, Order.currency).where(Order.id == order_id)
        ).first()
        key = session.scalar(select(Payment.idempotency_key).where(Payment.order_id == order_id))
    if order is None or key is None or order.status in st.CHARGED or order.status == st.RESERVED:
        return
    intent = rt.provider.find_intent(key)
    if intent is None:
        with rt.db.write_gate(), rt.db.session(write=True) as session:
            set_payment(session, order_id, None, status="void")
            session.commit()
        return
    if intent.status in ("processing", "requires_payment_method"):
        try:
            intent = rt.provider.cancel(intent.id)
        except ProviderError:
            intent = rt.provider.find_intent(key) or intent
    if intent.status == "succeeded" and intent.amount_refunded < intent.amount_minor:
        intent = rt.provider.refund(
            intent.id, amount_minor=None, idempotency_key=f"{order_id}:refund"
        )
    with rt.db.write_gate(), rt.db.session(write=True) as session:
        if intent.status == "succeeded":
            set_payment(
                session, order_id, intent, status="refunded", refunded_minor=intent.amount_refunded
            )
            try:
                st.transition(
                    session,
                    order_id=order_id,
                    to=st.REFUNDED,
                    only_from={st.CANCELLED},
                    reason="refund",
                )
                notifications.enqueue(
                    session,
                    kind="order_refunded",
                    user_id=order.user_id,
                    order_id=order_id,
                    amount=f"{intent.amount_refunded / 100:.2f}",
                    currency=order.currency,
                )
            except st.IllegalTransition:
                pass  # already refunded, or a failed payment that is simply recorded
        else:
            status = "failed" if order.status == st.PAYMENT_FAILED else "void"
            set_payment(session, order_id, intent, status=status)
        session.commit()
