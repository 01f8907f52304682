"""The checkout saga: reserve stock → charge → ship → notify, each step an order state.

Transactions are short and never span the provider call::

    T1  claim idempotency key, price lines, reserve stock, order=reserved, payment=pending
        ── commit ── (stock locks released)
    P   provider.charge(idempotency_key=f"{order_id}:charge")      (no transaction open)
    T2  order reserved→paid→fulfilled, shipment, outbox email, key=done   (or payment_failed +
        release)   ── commit ──

A crash between T1 and T2 leaves a ``reserved`` order whose deadline runs out; the recovery
routine compensates it (cancel, release, void/refund whatever the provider holds under the
derived key). Every state change is a conditional transition (:mod:`order_states`), so the
request, a webhook and recovery can race on one order and exactly one of them wins; the
losers compensate instead of overwriting. See docs/checkout.md.

Why one module of ~580 lines: it is the per-order saga read top to bottom, T1 → P → T2 and
the uncommon endings (lost race, decline, timeout, resume, cancel), as the picture above draws
it; the parts other paths share live elsewhere (:mod:`pricing`, :mod:`steps`), and splitting
the rest would put one story's phases in different files.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from serving.core import ids
from serving.core.config import Settings
from serving.core.errors import NotFound, Unprocessable
from serving.db.tables import Inventory, StockMovement
from serving.db.tables.cart import CartItem
from serving.db.tables.idempotency import IdempotencyKey
from serving.db.tables.orders import Order, OrderLine
from serving.db.tables.payments import Payment
from serving.services import shipping
from serving.services.checkout import holds, idempotency, provider_outage
from serving.services.checkout import order_states as st
from serving.services.checkout.payments import (
    Intent,
    PaymentDeclined,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
)
from serving.services.checkout.pricing import (
    PRICES,
    Placed,
    merge_lines,
    price_order,
    reservation_rows,
)
from serving.services.checkout.runtime import CheckoutRuntime, SimulatedCrash
from serving.services.checkout.steps import (
    CART_CLEAR,
    PAYMENT_SUCCEEDED,
    Outcome,
    cancelled_problem,
    compensate,
    fulfil,
    now_utc,
    problem_outcome,
    release_lines,
    set_payment,
    settle,
    store_outcome,
)
from serving.services.infra import notifications
from serving.services.marketplace import fulfilment as marketplace
from serving.services.orders import order_dict
from serving.services.pricing import at_checkout
from serving.services.shop import inventory

log = logging.getLogger("storeloop.checkout")

_INVENTORY = Inventory.__table__
_CART = CartItem.__table__
_PAYMENTS = Payment.__table__
_KEYS = IdempotencyKey.__table__
_CART_LINES = select(_CART.c.product_id, _CART.c.quantity).where(
    _CART.c.owner_key == bindparam("b_owner")
)
_RESERVE = (
    update(_INVENTORY)
    .where(
        _INVENTORY.c.product_id == bindparam("b_product_id"),
        _INVENTORY.c.on_hand - _INVENTORY.c.reserved >= bindparam("b_quantity"),
    )
    .values(reserved=_INVENTORY.c.reserved + bindparam("b_quantity"), updated_at=bindparam("b_now"))
)
_AVAILABLE = select(_INVENTORY.c.on_hand - _INVENTORY.c.reserved).where(
    _INVENTORY.c.product_id == bindparam("b_product_id")
)
_NEW_MOVEMENTS = insert(StockMovement.__table__)
_NEW_KEY = insert(_KEYS)
_NEW_ORDER = insert(Order.__table__)
_NEW_LINES = insert(OrderLine.__table__)
_NEW_PAYMENT = insert(_PAYMENTS)


def place_order(
    rt: CheckoutRuntime, *, user_id: int, key: str, body: dict[str, Any], events: Any
) -> Outcome:
    """Run the saga for one POST /orders; returns the (stored) outcome.

    T1 is one short write transaction: the key, the order, its lines, its saga log, its payment
    row and, last (so a PostgreSQL row lock on a popular product is held for the fewest
    statements), the reservation. Sold out rolls back to a savepoint and stores the 409 under
    the key in the same transaction.
    """
    key = idempotency.check_key(key)
    fingerprint = idempotency.request_hash(body)
    method = rt.provider.method(body["payment_method"])  # cached: no query once known
    if method is None:
        raise Unprocessable("Unknown payment method; tokenise the card first")
    provider_outage.refuse_new_checkout(rt.db, rt.provider, user_id=user_id, key=key)
    s = rt.settings
    order_id = "ord_" + ids.token_hex(10)
    placed: Placed | None = None
    for _ in range(2):
        existing = None
        with rt.db.write_gate(), rt.db.session(write=True) as session:
            now = now_utc()
            try:
                session.connection().execute(
                    _NEW_KEY,
                    {
                        "user_id": user_id,
                        "key": key,
                        "request_hash": fingerprint,
                        "status": "in_flight",
                        "order_id": order_id,
                        "response_status": None,
                        "response_body": None,
                        "locked_until": now + timedelta(seconds=s.checkout_saga_timeout_seconds),
                        "created_at": now,
                        "expires_at": now + timedelta(hours=s.idempotency_key_hours),
                    },
                )
            except IntegrityError:
                session.rollback()
                existing = idempotency.examine(
                    session,
                    user_id=user_id,
                    key=key,
                    fingerprint=fingerprint,
                    lock_seconds=s.checkout_saga_timeout_seconds,
                )
                if existing is None:
                    continue  # the old key had expired and is gone: claim it afresh
            if existing is None:
                # SQLite: a savepoint is free and keeps the sold-out answer in this one
                # transaction (one turn of the write lock). PostgreSQL: a savepoint costs two
                # round trips on every order, so sold out rolls back and records the answer in
                # a second short transaction instead.
                savepoint = session.begin_nested() if rt.db.is_sqlite else None
                try:
                    placed = _create_reserved_order(
                        session,
                        rt,
                        order_id=order_id,
                        user_id=user_id,
                        body=body,
                        method=method,
                        now=now,
                    )
                except (inventory.OutOfStock, at_checkout.CouponExhausted) as exc:
                    outcome = problem_outcome(exc)
                    if savepoint is not None:
                        savepoint.rollback()
                        store_outcome(session, user_id, key, outcome, None)
                    else:
                        session.rollback()
                        _record_answer(session, user_id, key, fingerprint, outcome, rt.settings)
                    session.commit()
                    return outcome
                if savepoint is not None:
                    savepoint.commit()
                session.commit()
        break
    if existing is not None:
        if existing.status == "done":
            return Outcome(existing.response_status or 200, existing.response_body, True)
        assert existing.order_id is not None
        return _resume(rt, existing.order_id, user_id=user_id, key=key, events=events)
    assert placed is not None
    events.emit("order_placed", user_id=user_id, order_id=order_id)
    if "crash_after_reserve" in rt.hooks:
        raise SimulatedCrash(f"test hook: crash after reserving {order_id}")
    return pay_and_finish(rt, order_id, user_id=user_id, key=key, events=events, placed=placed)


def _record_answer(
    session: Session,
    user_id: int,
    key: str,
    fingerprint: str,
    outcome: Outcome,
    settings: Settings,
) -> None:
    """Keep a final answer (sold out) under a key that is not in the database yet."""
    now = now_utc()
    try:
        with session.begin_nested():
            session.connection().execute(
                _NEW_KEY,
                {
                    "user_id": user_id,
                    "key": key,
                    "request_hash": fingerprint,
                    "status": "done",
                    "order_id": None,
                    "response_status": outcome.status,
                    "response_body": outcome.body,
                    "locked_until": now,
                    "created_at": now,
                    "expires_at": now + timedelta(hours=settings.idempotency_key_hours),
                },
            )
    except IntegrityError:
        pass  # a duplicate got there first; its answer stands


def _create_reserved_order(
    session: Session,
    rt: CheckoutRuntime,
    *,
    order_id: str,
    user_id: int,
    body: dict[str, Any],
    method: Any,
    now: datetime,
) -> Placed:
    conn = session.connection()
    from_cart = body.get("items") is None
    if from_cart:
        rows = conn.execute(_CART_LINES, {"b_owner": f"u:{user_id}"})
        lines = {r.product_id: r.quantity for r in rows}
    else:
        lines = merge_lines(body["items"])
    products = {r.id: r for r in conn.execute(PRICES, {"b_ids": list(lines)})} if lines else {}
    placed = price_order(
        rt,
        order_id=order_id,
        user_id=user_id,
        body=body,
        method=method,
        lines=lines,
        products=products,
        from_cart=from_cart,
        now=now,
        snap=at_checkout.load_for(conn, rt.settings, [(lines, body, user_id)], now),
    )
    rows = reservation_rows(rt, placed, method)
    conn.execute(_NEW_ORDER, rows.order)
    conn.execute(_NEW_LINES, rows.lines)
    st.append_path(session, rows.path)
    conn.execute(_NEW_PAYMENT, rows.payment)
    # The reservation last: on PostgreSQL the inventory row stays locked until the commit.
    for line in placed.lines:
        product_id, quantity = line["product_id"], line["quantity"]
        done = conn.execute(
            _RESERVE, {"b_product_id": product_id, "b_quantity": quantity, "b_now": now}
        )
        if done.rowcount != 1:
            available = conn.execute(_AVAILABLE, {"b_product_id": product_id}).scalar()
            raise inventory.OutOfStock(product_id, quantity, int(available or 0))
    conn.execute(_NEW_MOVEMENTS, rows.movements)
    # The promotions' uses (an exhausted coupon rolls this transaction back like sold out)
    # and the figures fixed on the order. After the stock: every writer that locks both
    # (the batch, compensation) takes stock rows first, so PostgreSQL never sees a cycle.
    at_checkout.hold(conn, order_id=order_id, user_id=user_id, quote=placed.quote, now=now)
    return placed


def load_placed(rt: CheckoutRuntime, order_id: str) -> Placed:
    """Placed, read back (a resumed order, or a test driving the saga by hand)."""
    with rt.db.session() as session:
        o = session.execute(select(Order).where(Order.id == order_id)).scalar_one()
        last4 = session.scalar(select(Payment.last4).where(Payment.order_id == order_id)) or ""
        lines = session.execute(
            select(
                OrderLine.product_id,
                OrderLine.title,
                OrderLine.quantity,
                OrderLine.unit_price_minor,
                OrderLine.line_total_minor,
            )
            .where(OrderLine.order_id == order_id)
            .order_by(OrderLine.product_id)
        ).all()
        return Placed(
            order_id=o.id,
            user_id=o.user_id,
            currency=o.currency,
            subtotal_minor=o.subtotal_minor,
            shipping_minor=o.shipping_minor,
            total_minor=o.total_minor,
            shipping_address=o.shipping_address,
            payment_method=o.payment_method,
            from_cart=o.from_cart,
            created_at=o.created_at,
            last4=last4,
            lines=[dict(line._mapping) for line in lines],
        )


# ---------------------------------------------------------------- P + T2: payment and result


def _charge(rt: CheckoutRuntime, placed: Placed) -> tuple[Intent | None, str | None]:
    """Call the provider with no transaction open; a timeout is resolved by looking up the key."""
    order_id = placed.order_id
    delay = rt.hooks.get("provider_delay_ms")
    if delay:
        time.sleep(int(delay) / 1000)  # test hook: widen the crash window for the SIGKILL test
    key = f"{order_id}:charge"
    try:
        intent = rt.provider.charge(
            amount_minor=placed.total_minor,
            currency=placed.currency,
            payment_method=placed.payment_method,
            idempotency_key=key,
            metadata={"order_id": order_id},
        )
        return intent, None
    except ProviderTimeout:
        log.warning("payment provider timed out for %s; resolving by idempotency key", order_id)
        try:
            intent = rt.provider.find_intent(key)
            if intent is not None and intent.status == "processing":
                try:
                    intent = rt.provider.cancel(intent.id)
                except ProviderError:
                    intent = rt.provider.find_intent(key)
        except (ProviderTimeout, ProviderUnavailable):
            return None, "provider_timeout"  # unresolved: recovery settles it by the key
        return intent, "provider_timeout"
    except ProviderUnavailable:
        log.warning("payment provider unavailable for %s", order_id)
        return None, "provider_unavailable"
    except ProviderError:
        log.warning("payment provider refused the charge for %s", order_id, exc_info=True)
        return None, "provider_error"


def _finish_paid(
    rt: CheckoutRuntime, placed: Placed, intent: Intent, *, key: str | None
) -> Outcome | None:
    """T2 of the common case, one short transaction: reserved → paid → fulfilled, payment row,
    label, confirmation email, cart, and the stored response, built from memory. None when the
    order is no longer ``reserved`` (a webhook or a cancel got there first)."""
    order_id = placed.order_id
    if holds.review_needed(rt.db, rt.settings, order_id=order_id):
        return None  # the general path holds it for review (fulfil → holds.hold_if_suspicious)
    with rt.db.write_gate(), rt.db.session(write=True) as session:
        now = now_utc()
        try:
            st.advance(
                session,
                order_id=order_id,
                expected=st.RESERVED,
                steps=[(st.PAID, "charged"), (st.FULFILLED, "label")],
                now=now,
            )
        except st.IllegalTransition:
            session.rollback()
            return None
        conn = session.connection()
        conn.execute(
            PAYMENT_SUCCEEDED, {"b_order_id": order_id, "b_intent_id": intent.id, "b_now": now}
        )
        _, shipment = shipping.new_label(session, order_id=order_id, now=now)
        marketplace.open_priced(  # a parcel and a sale per seller, with the order's label
            session, order_id=order_id, currency=placed.currency, shares=placed.sellers, now=now
        )
        notifications.enqueue(
            session,
            kind="order_confirmed",
            user_id=placed.user_id,
            order_id=order_id,
            total=f"{placed.total_minor / 100:.2f}",
            currency=placed.currency,
        )
        if placed.from_cart:
            conn.execute(
                CART_CLEAR,
                {
                    "b_owner": f"u:{placed.user_id}",
                    "b_ids": [line["product_id"] for line in placed.lines],
                },
            )
        outcome = Outcome(
            201,
            placed.body(
                status=st.FULFILLED, updated_at=now, payment="succeeded", shipment=shipment
            ),
        )
        store_outcome(session, placed.user_id, key, outcome, order_id)
        session.commit()
    return outcome


def pay_and_finish(
    rt: CheckoutRuntime,
    order_id: str,
    *,
    user_id: int,
    key: str | None,
    events: Any,
    placed: Placed | None = None,
) -> Outcome:
    if placed is None:
        placed = load_placed(rt, order_id)
    intent, note = _charge(rt, placed)
    return complete_charge(rt, placed, intent, note, user_id=user_id, key=key, events=events)


def complete_charge(
    rt: CheckoutRuntime,
    placed: Placed,
    intent: Intent | None,
    note: str | None,
    *,
    user_id: int,
    key: str | None,
    events: Any,
) -> Outcome:
    """Everything after the provider answered: T2 on the common path, else the uncommon
    endings (also the batched checkout's way out when its group T2 cannot apply)."""
    order_id = placed.order_id
    captured = intent is not None and intent.captured
    if captured:
        assert intent is not None
        outcome = _finish_paid(rt, placed, intent, key=key)
        if outcome is not None:
            events.emit(
                "order_paid",
                user_id=user_id,
                order_id=order_id,
                props={"total_minor": outcome.body["total_minor"]},
            )
            return outcome
    with rt.db.write_gate(), rt.db.session(write=True) as session:
        outcome, refund = _record_result(
            session, order_id, intent, note, user_id=user_id, key=key, events=events
        )
    if refund:  # after the commit and outside the gate: the provider is called with nothing held
        settle(rt, order_id)
    return outcome


def _record_result(
    session: Session,
    order_id: str,
    intent: Intent | None,
    note: str | None,
    *,
    user_id: int,
    key: str | None,
    events: Any,
) -> tuple[Outcome, bool]:
    """The uncommon endings (lost race, decline, timeout) in one transaction; commits.

    Returns the outcome and whether the provider must be settled afterwards."""
    captured = intent is not None and intent.captured
    if captured:
        try:
            st.transition(
                session,
                order_id=order_id,
                to=st.PAID,
                only_from={st.RESERVED},
                reason="charged",
            )
        except st.IllegalTransition as exc:
            current = exc.extensions.get("current_status")
            if current in st.CHARGED:  # a webhook finished the order first: same result
                outcome = Outcome(201, order_dict(session, order_id))
                store_outcome(session, user_id, key, outcome, order_id)
                session.commit()
                return outcome, False
            # Cancelled (shopper, recovery) while we were paying: the money goes back.
            set_payment(session, order_id, intent, status="succeeded")
            problem = cancelled_problem(order_id)
            store_outcome(session, user_id, key, problem_outcome(problem), order_id)
            session.commit()
            return problem_outcome(problem), True
        set_payment(session, order_id, intent, status="succeeded")
        fulfil(session, order_id=order_id)
        outcome = Outcome(201, order_dict(session, order_id))
        store_outcome(session, user_id, key, outcome, order_id)
        session.commit()
        events.emit(
            "order_paid",
            user_id=user_id,
            order_id=order_id,
            props={"total_minor": outcome.body["total_minor"]},
        )
        return outcome, False
    code = (intent.decline_code if intent is not None else None) or "processing_error"
    try:
        st.transition(
            session,
            order_id=order_id,
            to=st.PAYMENT_FAILED,
            only_from={st.RESERVED},
            reason=note or code,
        )
        release_lines(session, order_id=order_id, reason="payment_failed")
    except st.IllegalTransition as exc:
        # Usually already compensated by someone else (nothing left to release). But if the
        # order got charged-looking states while the provider finally declined, it must not
        # stay there: no goods leave without a succeeded charge.
        if exc.extensions.get("current_status") in st.CHARGED and _finally_unpaid(intent):
            _undo_unpaid(session, order_id)
    # With no answer from the provider a charge may exist under the key: "pending" leaves the
    # payment for recovery to settle (void or refund) once the provider answers again.
    unresolved = intent is None and note in ("provider_timeout", "provider_unavailable")
    set_payment(
        session, order_id, intent, status="pending" if unresolved else "failed", decline_code=code
    )
    extra = {"reason": note} if note else {}
    problem = PaymentDeclined(code, order_id, **extra)
    store_outcome(session, user_id, key, problem_outcome(problem), order_id)
    session.commit()
    return problem_outcome(problem), intent is not None and intent.status == "processing"


def _finally_unpaid(intent: Intent | None) -> bool:
    """The provider's final word on this order's charge is "no money" (declined or voided).

    ``None`` (no answer) and ``processing`` may still end in a success, so they do not count.
    """
    return intent is not None and intent.status in ("requires_payment_method", "canceled")


def _undo_unpaid(session: Session, order_id: str) -> None:
    """An order that looks charged although its charge failed: cancel it (stock back, parcel
    stopped, the shopper told). Raced in by anything that trusted a success the provider never
    reported; recorded loudly because it means some path believed the wrong party."""
    user_id = session.scalar(select(Order.user_id).where(Order.id == order_id))
    log.error("order %s looked paid but its charge was declined: cancelling it", order_id)
    try:
        compensate(session, order_id=order_id, user_id=user_id, reason="payment declined")
    except st.IllegalTransition:
        # Already shipped or held: only a person can sort this out now.
        log.critical("order %s was not paid and could not be cancelled: review it", order_id)


def _resume(rt: CheckoutRuntime, order_id: str, *, user_id: int, key: str, events: Any) -> Outcome:
    """A retry took over a key whose request died: continue that order from its state."""
    with rt.db.session() as session:
        status = session.scalar(select(Order.status).where(Order.id == order_id))
    if status == st.RESERVED:
        return pay_and_finish(rt, order_id, user_id=user_id, key=key, events=events)
    with rt.db.write_gate(), rt.db.session(write=True) as session:
        status = session.scalar(select(Order.status).where(Order.id == order_id))
        if status in st.CHARGED:
            outcome = Outcome(201, order_dict(session, order_id))
        elif status == st.PAYMENT_FAILED:
            code = session.scalar(select(Payment.decline_code).where(Payment.order_id == order_id))
            outcome = problem_outcome(PaymentDeclined(code or "processing_error", order_id))
        else:
            outcome = problem_outcome(cancelled_problem(order_id))
        store_outcome(session, user_id, key, outcome, order_id)
        session.commit()
        return outcome


# ---------------------------------------------------------------- cancel, compensate, settle


def cancel_order(
    rt: CheckoutRuntime, *, order_id: str, user_id: int | None, reason: str, events: Any
) -> dict[str, Any]:
    """Cancel before shipping: release stock now, then void or refund at the provider."""
    with rt.db.write_gate(), rt.db.session(write=True) as session:
        query = select(Order.user_id).where(Order.id == order_id)
        if user_id is not None:
            query = query.where(Order.user_id == user_id)
        owner = session.scalar(query)
        if owner is None:
            raise NotFound("Order", order_id)
        compensate(session, order_id=order_id, user_id=owner, reason=reason)
        session.commit()
    events.emit("order_cancelled", user_id=owner, order_id=order_id, props={"reason": reason})
    settle(rt, order_id)
    with rt.db.session() as session:
        return order_dict(session, order_id)
