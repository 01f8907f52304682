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
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from serving.core.clock import utcnow
from serving.core.config import Settings
from serving.core.errors import NotFound, ProblemError, Unprocessable
from serving.db.engine import Database
from serving.db.tables import Product
from serving.db.tables.cart import CartItem
from serving.db.tables.orders import Order, OrderLine
from serving.db.tables.payments import Payment, WebhookReceipt
from serving.services import idempotency, inventory, notifications, shipping
from serving.services import order_states as st
from serving.services.orders import order_dict
from serving.services.payments import (
    Intent,
    PaymentDeclined,
    ProviderError,
    ProviderTimeout,
)
from serving.services.payments.simulated import SimulatedProvider
from serving.services.payments.webhooks import WebhookDispatcher, verify

log = logging.getLogger("storeloop.checkout")


class SimulatedCrash(RuntimeError):
    """Raised by a test hook to stop the saga exactly where a process crash would."""


class NoEvents:
    def emit(self, event_type: str, **fields: Any) -> None:
        return None


class CheckoutRuntime:
    """What the saga needs beyond a session: database, provider, webhooks, settings, hooks."""

    def __init__(self, db: Database, settings: Settings, event_log: Any = None) -> None:
        self.db = db
        self.settings = settings
        self.event_log = event_log
        delivery = settings.payment_webhook_delivery
        self.dispatcher = WebhookDispatcher(
            settings.payment_webhook_secret,
            receiver=self.receive_webhook if delivery == "inprocess" else None,
            url=settings.payment_webhook_url if delivery == "http" else None,
        )
        self.provider = SimulatedProvider(
            db, webhook_sink=None if delivery == "off" else self.dispatcher.submit
        )
        allowed = settings.environment == "test" or settings.simulation_mode
        raw = settings.test_hooks or (os.environ.get("STORELOOP_TEST_HOOKS", "") if allowed else "")
        self.hooks: dict[str, str] = {}
        if allowed:
            for item in filter(None, (p.strip() for p in raw.split(","))):
                name, _, value = item.partition("=")
                self.hooks[name] = value

    def emit(self, event_type: str, **fields: Any) -> None:
        """Background steps emit straight to the log; a failing log never fails the step."""
        if self.event_log is None:
            return
        try:
            self.event_log.emit(event_type, **fields)
        except Exception:
            log.exception("could not log %s", event_type)

    def receive_webhook(self, body: bytes, signature: str | None) -> dict[str, Any]:
        return receive_webhook(self, body=body, signature=signature)


@dataclass(frozen=True)
class Outcome:
    """A final answer of POST /orders, as stored under the idempotency key."""

    status: int
    body: dict[str, Any]
    replayed: bool = False


# ---------------------------------------------------------------- T1: order and reservation


def _merge_lines(items: list[dict[str, Any]]) -> dict[int, int]:
    """Two lines of one product become one, so they cannot each pass the stock check."""
    merged: dict[int, int] = {}
    for item in items:
        merged[item["product_id"]] = merged.get(item["product_id"], 0) + item["quantity"]
    return merged


def _cart_lines(session: Session, user_id: int) -> dict[int, int]:
    rows = session.execute(
        select(CartItem.product_id, CartItem.quantity).where(CartItem.owner_key == f"u:{user_id}")
    ).all()
    return {r.product_id: r.quantity for r in rows}


def _problem_outcome(problem: ProblemError) -> Outcome:
    return Outcome(problem.status, problem.to_dict())


def place_order(
    rt: CheckoutRuntime, *, user_id: int, key: str, body: dict[str, Any], events: Any
) -> Outcome:
    """Run the saga for one POST /orders; returns the (stored) outcome."""
    key = idempotency.check_key(key)
    fingerprint = idempotency.request_hash(body)
    method = rt.provider.method(body["payment_method"])
    if method is None:
        raise Unprocessable("Unknown payment method; tokenise the card first")
    s = rt.settings
    order_id = "ord_" + secrets.token_hex(10)
    for _ in range(2):
        with rt.db.session(write=True) as session:
            try:
                idempotency.insert_key(
                    session,
                    user_id=user_id,
                    key=key,
                    fingerprint=fingerprint,
                    order_id=order_id,
                    lock_seconds=s.checkout_saga_timeout_seconds,
                    keep_hours=s.idempotency_key_hours,
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
                if existing.status == "done":
                    return Outcome(existing.response_status or 200, existing.response_body, True)
                assert existing.order_id is not None
                return _resume(rt, existing.order_id, user_id=user_id, key=key, events=events)
            try:
                _create_reserved_order(
                    session, rt, order_id=order_id, user_id=user_id, body=body, method=method
                )
            except inventory.OutOfStock as exc:
                session.rollback()
                _store_failure(rt, user_id=user_id, key=key, fingerprint=fingerprint, problem=exc)
                return _problem_outcome(exc)
            session.commit()
        break
    events.emit("order_placed", user_id=user_id, order_id=order_id)
    if "crash_after_reserve" in rt.hooks:
        raise SimulatedCrash(f"test hook: crash after reserving {order_id}")
    return _pay_and_finish(rt, order_id, user_id=user_id, key=key, events=events)


def _create_reserved_order(
    session: Session,
    rt: CheckoutRuntime,
    *,
    order_id: str,
    user_id: int,
    body: dict[str, Any],
    method: Any,
) -> None:
    from_cart = body.get("items") is None
    lines = _cart_lines(session, user_id) if from_cart else _merge_lines(body["items"])
    if not lines:
        raise Unprocessable("The cart is empty and the request names no items")
    products = {
        r.id: r
        for r in session.execute(
            select(Product.id, Product.title, Product.price_minor, Product.currency).where(
                Product.id.in_(list(lines)), Product.status == "active"
            )
        )
    }
    for product_id in lines:
        if product_id not in products:
            raise NotFound("Product", product_id)
    currencies = {p.currency for p in products.values()}
    if len(currencies) != 1:
        raise Unprocessable("All items of one order must share a currency")
    # Ascending product order: two orders never wait on each other's rows (no deadlock).
    for product_id in sorted(lines):
        inventory.reserve(
            session, product_id=product_id, quantity=lines[product_id], order_id=order_id
        )
    subtotal = sum(products[p].price_minor * q for p, q in lines.items())
    settings = rt.settings
    shipping_minor = (
        0 if subtotal >= settings.free_shipping_from_minor else settings.shipping_flat_minor
    )
    now = utcnow()
    ttl = min(settings.reservation_ttl_seconds, settings.checkout_saga_timeout_seconds)
    session.execute(
        insert(Order).values(
            id=order_id,
            user_id=user_id,
            status=st.RESERVED,
            currency=currencies.pop(),
            subtotal_minor=subtotal,
            shipping_minor=shipping_minor,
            total_minor=subtotal + shipping_minor,
            shipping_address=body["shipping_address"],
            payment_method=body["payment_method"],
            from_cart=from_cart,
            reserved_until=now + timedelta(seconds=ttl),
            created_at=now,
            updated_at=now,
        )
    )
    session.execute(
        insert(OrderLine),
        [
            {
                "order_id": order_id,
                "product_id": p,
                "title": products[p].title,
                "quantity": q,
                "unit_price_minor": products[p].price_minor,
                "line_total_minor": products[p].price_minor * q,
            }
            for p, q in sorted(lines.items())
        ],
    )
    st.record(session, order_id=order_id, from_status=None, to_status=st.PENDING, reason="placed")
    st.record(
        session, order_id=order_id, from_status=st.PENDING, to_status=st.RESERVED, reason="stock"
    )
    session.execute(
        insert(Payment).values(
            order_id=order_id,
            provider=rt.provider.name,
            idempotency_key=f"{order_id}:charge",
            intent_id=None,
            status="pending",
            amount_minor=subtotal + shipping_minor,
            refunded_minor=0,
            currency=products[next(iter(lines))].currency,
            brand=method.brand,
            last4=method.last4,
            decline_code=None,
            created_at=now,
            updated_at=now,
        )
    )


def _store_failure(
    rt: CheckoutRuntime, *, user_id: int, key: str, fingerprint: str, problem: ProblemError
) -> None:
    """Keep a final failure (sold out) under the key so a retry gets the same answer."""
    with rt.db.session(write=True) as session:
        try:
            idempotency.insert_key(
                session,
                user_id=user_id,
                key=key,
                fingerprint=fingerprint,
                order_id="",
                lock_seconds=0,
                keep_hours=rt.settings.idempotency_key_hours,
            )
            idempotency.store_response(
                session,
                user_id=user_id,
                key=key,
                status=problem.status,
                body=problem.to_dict(),
                order_id=None,
            )
            session.commit()
        except IntegrityError:
            session.rollback()  # a duplicate got there first; its answer stands


# ---------------------------------------------------------------- P + T2: payment and result


def _charge(rt: CheckoutRuntime, order_id: str) -> tuple[Intent | None, str | None]:
    """Call the provider with no transaction open; a timeout is resolved by looking up the key."""
    with rt.db.session() as session:
        row = session.execute(
            select(Order.total_minor, Order.currency, Order.payment_method).where(
                Order.id == order_id
            )
        ).one()
    delay = rt.hooks.get("provider_delay_ms")
    if delay:
        time.sleep(int(delay) / 1000)  # test hook: widen the crash window for the SIGKILL test
    key = f"{order_id}:charge"
    try:
        intent = rt.provider.charge(
            amount_minor=row.total_minor,
            currency=row.currency,
            payment_method=row.payment_method,
            idempotency_key=key,
            metadata={"order_id": order_id},
        )
        return intent, None
    except ProviderTimeout:
        log.warning("payment provider timed out for %s; resolving by idempotency key", order_id)
        intent = rt.provider.find_intent(key)
        if intent is not None and intent.status == "processing":
            try:
                intent = rt.provider.cancel(intent.id)
            except ProviderError:
                intent = rt.provider.find_intent(key)
        return intent, "provider_timeout"
    except ProviderError:
        log.warning("payment provider refused the charge for %s", order_id, exc_info=True)
        return None, "provider_error"


def _set_payment(session: Session, order_id: str, intent: Intent | None, **values: Any) -> None:
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
    shipping.create_shipment(session, order_id=order_id)
    st.transition(session, order_id=order_id, to=st.FULFILLED, only_from={st.PAID}, reason="label")
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


def _pay_and_finish(
    rt: CheckoutRuntime, order_id: str, *, user_id: int, key: str | None, events: Any
) -> Outcome:
    intent, note = _charge(rt, order_id)
    captured = intent is not None and intent.captured
    with rt.db.session(write=True) as session:
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
                    _store(session, user_id, key, outcome, order_id)
                    session.commit()
                    return outcome
                # Cancelled (shopper, recovery) while we were paying: the money goes back.
                _set_payment(session, order_id, intent, status="succeeded")
                problem = _cancelled_problem(order_id)
                _store(session, user_id, key, _problem_outcome(problem), order_id)
                session.commit()
                settle(rt, order_id)
                return _problem_outcome(problem)
            _set_payment(session, order_id, intent, status="succeeded")
            fulfil(session, order_id=order_id)
            outcome = Outcome(201, order_dict(session, order_id))
            _store(session, user_id, key, outcome, order_id)
            session.commit()
            events.emit(
                "order_paid",
                user_id=user_id,
                order_id=order_id,
                props={"total_minor": outcome.body["total_minor"]},
            )
            return outcome
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
        except st.IllegalTransition:
            pass  # already compensated by someone else; nothing left to release
        _set_payment(session, order_id, intent, status="failed", decline_code=code)
        extra = {"reason": note} if note else {}
        problem = PaymentDeclined(code, order_id, **extra)
        _store(session, user_id, key, _problem_outcome(problem), order_id)
        session.commit()
    if intent is not None and intent.status == "processing":
        settle(rt, order_id)
    return _problem_outcome(problem)


def _cancelled_problem(order_id: str) -> ProblemError:
    return ProblemError(
        409,
        "Order cancelled",
        f"Order {order_id} was cancelled before payment completed; any charge is refunded",
        type_="https://storeloop.dev/problems/order-cancelled",
        order_id=order_id,
    )


def _store(session: Session, user_id: int, key: str | None, outcome: Outcome, order_id: str):
    if key is not None:
        idempotency.store_response(
            session,
            user_id=user_id,
            key=key,
            status=outcome.status,
            body=outcome.body,
            order_id=order_id,
        )


def _resume(rt: CheckoutRuntime, order_id: str, *, user_id: int, key: str, events: Any) -> Outcome:
    """A retry took over a key whose request died: continue that order from its state."""
    with rt.db.session(write=True) as session:
        status = session.scalar(select(Order.status).where(Order.id == order_id))
        if status == st.RESERVED:
            session.rollback()
            return _pay_and_finish(rt, order_id, user_id=user_id, key=key, events=events)
        if status in st.CHARGED:
            outcome = Outcome(201, order_dict(session, order_id))
        elif status == st.PAYMENT_FAILED:
            code = session.scalar(select(Payment.decline_code).where(Payment.order_id == order_id))
            outcome = _problem_outcome(PaymentDeclined(code or "processing_error", order_id))
        else:
            outcome = _problem_outcome(_cancelled_problem(order_id))
        _store(session, user_id, key, outcome, order_id)
        session.commit()
        return outcome


# ---------------------------------------------------------------- cancel, compensate, settle


def cancel_order(
    rt: CheckoutRuntime, *, order_id: str, user_id: int | None, reason: str, events: Any
) -> dict[str, Any]:
    """Cancel before shipping: release stock now, then void or refund at the provider."""
    with rt.db.session(write=True) as session:
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
    shipping.advance(session, order_id=order_id, from_status="label_created", to_status="cancelled")
    notifications.enqueue(
        session, kind="order_cancelled", user_id=user_id, order_id=order_id, reason=reason
    )


def settle(rt: CheckoutRuntime, order_id: str) -> None:
    """Make the provider agree with a dead order: void what is pending, refund what was taken.

    Asks the provider by the derived key rather than trusting our payment row, because the
    row may predate a charge that a crashed or slow request made. Safe to run any number of
    times: the refund carries its own idempotency key.
    """
    with rt.db.session() as session:
        order = session.execute(
            select(Order.status, Order.user_id, Order.currency).where(Order.id == order_id)
        ).first()
        key = session.scalar(select(Payment.idempotency_key).where(Payment.order_id == order_id))
    if order is None or key is None or order.status in st.CHARGED or order.status == st.RESERVED:
        return
    intent = rt.provider.find_intent(key)
    if intent is None:
        with rt.db.session(write=True) as session:
            _set_payment(session, order_id, None, status="void")
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
    with rt.db.session(write=True) as session:
        if intent.status == "succeeded":
            _set_payment(
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
            _set_payment(session, order_id, intent, status=status)
        session.commit()


# ---------------------------------------------------------------- webhooks


def receive_webhook(rt: CheckoutRuntime, *, body: bytes, signature: str | None) -> dict[str, Any]:
    """Apply one provider event; replays are acknowledged and ignored (event id dedupe).

    Order of arrival does not matter: each event is checked against the order's current state
    and only moves it along legal transitions. A late ``succeeded`` for a dead order is
    recorded and refunded, never allowed to revive it.
    """
    verify(rt.settings.payment_webhook_secret, body, signature)
    try:
        event = orjson.loads(body)
        event_id, event_type = str(event["id"]), str(event["type"])
        obj = event["data"]["object"]
        order_id = (obj.get("metadata") or {}).get("order_id")
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        raise Unprocessable("The webhook body is not a provider event") from None
    need_settle = False
    with rt.db.session(write=True) as session:
        try:
            session.execute(
                insert(WebhookReceipt).values(
                    event_id=event_id, event_type=event_type[:60], received_at=utcnow()
                )
            )
        except IntegrityError:
            session.rollback()
            return {"received": True, "duplicate": True}
        order = session.execute(
            select(Order.status, Order.user_id).where(Order.id == order_id)
        ).first()
        if order is None:
            session.commit()
            return {"received": True, "ignored": "unknown order"}
        intent_id = obj.get("id")
        if event_type == "payment_intent.succeeded":
            if order.status == st.RESERVED:
                st.transition(
                    session,
                    order_id=order_id,
                    to=st.PAID,
                    only_from={st.RESERVED},
                    reason="webhook",
                )
                session.execute(
                    update(Payment)
                    .where(Payment.order_id == order_id)
                    .values(status="succeeded", intent_id=intent_id, updated_at=utcnow())
                )
                fulfil(session, order_id=order_id)
            elif order.status in st.CHARGED:
                session.execute(
                    update(Payment)
                    .where(Payment.order_id == order_id, Payment.status == "pending")
                    .values(status="succeeded", intent_id=intent_id, updated_at=utcnow())
                )
            else:
                need_settle = True  # late success for a dead order: refund, never revive
        elif event_type == "payment_intent.payment_failed" and order.status == st.RESERVED:
            st.transition(
                session,
                order_id=order_id,
                to=st.PAYMENT_FAILED,
                only_from={st.RESERVED},
                reason="webhook",
            )
            release_lines(session, order_id=order_id, reason="payment_failed")
            session.execute(
                update(Payment)
                .where(Payment.order_id == order_id)
                .values(status="failed", decline_code=obj.get("decline_code"), updated_at=utcnow())
            )
        elif event_type == "charge.refunded":
            session.execute(
                update(Payment)
                .where(
                    Payment.order_id == order_id, Payment.refunded_minor < obj["amount_refunded"]
                )
                .values(refunded_minor=int(obj["amount_refunded"]), updated_at=utcnow())
            )
        session.commit()
    if need_settle:
        settle(rt, order_id)
    return {"received": True}
