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
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from serving.core import ids
from serving.core.clock import utcnow
from serving.core.config import Settings
from serving.core.errors import NotFound, ProblemError, Unprocessable
from serving.db.engine import Database
from serving.db.tables import Inventory, Product, StockMovement
from serving.db.tables.cart import CartItem
from serving.db.tables.idempotency import IdempotencyKey
from serving.db.tables.orders import Order, OrderLine
from serving.db.tables.payments import Payment, WebhookReceipt
from serving.services import fraud, idempotency, inventory, notifications, provider_outage, shipping
from serving.services import order_states as st
from serving.services.orders import order_dict
from serving.services.payments import (
    Intent,
    PaymentDeclined,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
)
from serving.services.payments.guarded import build_provider
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
            batch_receiver=self.receive_webhooks,
            delay=settings.payment_webhook_delay_seconds if delivery == "inprocess" else 0.0,
        )
        allowed = settings.environment == "test" or settings.simulation_mode
        raw = settings.test_hooks or (os.environ.get("STORELOOP_TEST_HOOKS", "") if allowed else "")
        self.hooks: dict[str, str] = {}
        if allowed:
            for item in filter(None, (p.strip() for p in raw.split(","))):
                name, _, value = item.partition("=")
                self.hooks[name] = value
        self._batcher: Any = None
        self._batcher_lock = threading.Lock()
        self.provider = build_provider(
            db,
            settings,
            webhook_sink=None if delivery == "off" else self.dispatcher.submit,
            hooks=self.hooks,
        )

    def batcher(self) -> Any:
        """The worker's checkout batcher (:mod:`checkout_batch`), started on first use; None
        when batching is off."""
        if not self.settings.checkout_batching:
            return None
        with self._batcher_lock:
            if self._batcher is None:
                from serving.services.checkout_batch import CheckoutBatcher

                threads = self.settings.checkout_batch_threads
                self._batcher = CheckoutBatcher(
                    self, max_batch=self.settings.checkout_batch_max, threads=threads
                )
            return self._batcher

    def close(self) -> None:
        """Stop the batcher (after the server stopped taking requests)."""
        with self._batcher_lock:
            batcher, self._batcher = self._batcher, None
        if batcher is not None:
            batcher.close()

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

    def receive_webhooks(self, deliveries: list[tuple[bytes, str]]) -> None:
        receive_webhooks(self, deliveries)


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


def _problem_outcome(problem: ProblemError) -> Outcome:
    return Outcome(problem.status, problem.to_dict())


_PRODUCTS = Product.__table__
_INVENTORY = Inventory.__table__
_CART = CartItem.__table__
_PAYMENTS = Payment.__table__
_KEYS = IdempotencyKey.__table__
# Prebuilt once: per order the hot path only binds values (no statement construction, and the
# compiled-statement cache is hit by identity).
_PRICES = select(
    _PRODUCTS.c.id, _PRODUCTS.c.title, _PRODUCTS.c.price_minor, _PRODUCTS.c.currency
).where(_PRODUCTS.c.id.in_(bindparam("b_ids", expanding=True)), _PRODUCTS.c.status == "active")
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
_PAYMENT_SUCCEEDED = (
    update(_PAYMENTS)
    .where(_PAYMENTS.c.order_id == bindparam("b_order_id"))
    .values(status="succeeded", intent_id=bindparam("b_intent_id"), updated_at=bindparam("b_now"))
)
_KEY_DONE = (
    update(_KEYS)
    .where(_KEYS.c.user_id == bindparam("b_user_id"), _KEYS.c.key == bindparam("b_key"))
    .values(
        status="done",
        response_status=bindparam("b_status"),
        response_body=bindparam("b_body"),
        order_id=bindparam("b_order_id"),
    )
)
_CART_CLEAR = delete(_CART).where(
    _CART.c.owner_key == bindparam("b_owner"),
    _CART.c.product_id.in_(bindparam("b_ids", expanding=True)),
)


@dataclass
class Placed:
    """What T1 wrote, kept in memory so the charge and T2 need not read it back."""

    order_id: str
    user_id: int
    currency: str
    subtotal_minor: int
    shipping_minor: int
    total_minor: int
    shipping_address: dict[str, Any]
    payment_method: str
    from_cart: bool
    created_at: datetime
    last4: str
    lines: list[dict[str, Any]]

    def body(self, *, status: str, updated_at: datetime, payment: str, shipment: Any) -> dict:
        """The order as :func:`orders.order_dict` shows it (a test pins the equality)."""
        return {
            "id": self.order_id,
            "status": status,
            "items": [dict(line) for line in self.lines],
            "subtotal_minor": self.subtotal_minor,
            "shipping_minor": self.shipping_minor,
            "total_minor": self.total_minor,
            "currency": self.currency,
            "shipping_address": self.shipping_address,
            "created_at": self.created_at.isoformat(),
            "updated_at": updated_at.isoformat(),
            "payment": {
                "status": payment,
                "last4": self.last4,
                "refunded_minor": 0,
                "decline_code": None,
            },
            "shipment": shipment,
        }


def _now() -> datetime:
    return utcnow().astimezone(UTC)


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
            now = _now()
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
                except inventory.OutOfStock as exc:
                    outcome = _problem_outcome(exc)
                    if savepoint is not None:
                        savepoint.rollback()
                        _store(session, user_id, key, outcome, None)
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
    return _pay_and_finish(rt, order_id, user_id=user_id, key=key, events=events, placed=placed)


def _record_answer(
    session: Session,
    user_id: int,
    key: str,
    fingerprint: str,
    outcome: Outcome,
    settings: Settings,
) -> None:
    """Keep a final answer (sold out) under a key that is not in the database yet."""
    now = _now()
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


def price_order(
    rt: CheckoutRuntime,
    *,
    order_id: str,
    user_id: int,
    body: dict[str, Any],
    method: Any,
    lines: dict[int, int],
    products: dict[int, Any],
    from_cart: bool,
    now: datetime,
) -> Placed:
    """The order as it will be written, priced from ``products`` (rows of ``_PRICES``).

    Raises the shopper's errors (empty, unknown product, mixed currencies) before anything is
    written; shared by the per-order saga and the batched one."""
    if not lines:
        raise Unprocessable("The cart is empty and the request names no items")
    for product_id in lines:
        if product_id not in products:
            raise NotFound("Product", product_id)
    currencies = {products[p].currency for p in lines}
    if len(currencies) != 1:
        raise Unprocessable("All items of one order must share a currency")
    currency = currencies.pop()
    ordered = sorted(lines)  # ascending product id: two orders never wait on each other
    line_rows = [
        {
            "product_id": p,
            "title": products[p].title,
            "quantity": lines[p],
            "unit_price_minor": products[p].price_minor,
            "line_total_minor": products[p].price_minor * lines[p],
        }
        for p in ordered
    ]
    subtotal = sum(row["line_total_minor"] for row in line_rows)
    settings = rt.settings
    shipping_minor = (
        0 if subtotal >= settings.free_shipping_from_minor else settings.shipping_flat_minor
    )
    return Placed(
        order_id=order_id,
        user_id=user_id,
        currency=currency,
        subtotal_minor=subtotal,
        shipping_minor=shipping_minor,
        total_minor=subtotal + shipping_minor,
        shipping_address=body["shipping_address"],
        payment_method=body["payment_method"],
        from_cart=from_cart,
        created_at=now,
        last4=method.last4,
        lines=line_rows,
    )


@dataclass
class ReservationRows:
    """The rows T1 inserts for one order; the batch concatenates several orders' rows."""

    order: dict[str, Any]
    lines: list[dict[str, Any]]
    path: list[dict[str, Any]]
    payment: dict[str, Any]
    movements: list[dict[str, Any]]


def reservation_rows(rt: CheckoutRuntime, placed: Placed, method: Any) -> ReservationRows:
    now = placed.created_at
    order_id = placed.order_id
    settings = rt.settings
    ttl = min(settings.reservation_ttl_seconds, settings.checkout_saga_timeout_seconds)
    return ReservationRows(
        order={
            "id": order_id,
            "user_id": placed.user_id,
            "status": st.RESERVED,
            "currency": placed.currency,
            "subtotal_minor": placed.subtotal_minor,
            "shipping_minor": placed.shipping_minor,
            "total_minor": placed.total_minor,
            "shipping_address": placed.shipping_address,
            "payment_method": placed.payment_method,
            "from_cart": placed.from_cart,
            "reserved_until": now + timedelta(seconds=ttl),
            "created_at": now,
            "updated_at": now,
        },
        lines=[{"order_id": order_id, **row} for row in placed.lines],
        path=st.path_rows(
            order_id=order_id,
            start=None,
            steps=[(st.PENDING, "placed"), (st.RESERVED, "stock")],
            now=now,
        ),
        payment={
            "order_id": order_id,
            "provider": rt.provider.name,
            "idempotency_key": f"{order_id}:charge",
            "intent_id": None,
            "status": "pending",
            "amount_minor": placed.total_minor,
            "refunded_minor": 0,
            "currency": placed.currency,
            "brand": method.brand,
            "last4": method.last4,
            "decline_code": None,
            "created_at": now,
            "updated_at": now,
        },
        movements=[
            {
                "product_id": line["product_id"],
                "delta_on_hand": 0,
                "delta_reserved": line["quantity"],
                "reason": "reserve",
                "actor_user_id": None,
                "order_id": order_id,
                "note": "",
                "created_at": now,
            }
            for line in placed.lines
        ],
    )


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
        lines = _merge_lines(body["items"])
    products = {r.id: r for r in conn.execute(_PRICES, {"b_ids": list(lines)})} if lines else {}
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
    return placed


def _load_placed(rt: CheckoutRuntime, order_id: str) -> Placed:
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
    if fraud.hold_if_suspicious(session, order_id=order_id):
        return  # paid, held for a fraud review: an admin releases or cancels it
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


def _finish_paid(
    rt: CheckoutRuntime, placed: Placed, intent: Intent, *, key: str | None
) -> Outcome | None:
    """T2 of the common case, one short transaction: reserved → paid → fulfilled, payment row,
    label, confirmation email, cart, and the stored response, built from memory. None when the
    order is no longer ``reserved`` (a webhook or a cancel got there first)."""
    order_id = placed.order_id
    if fraud.review_needed(rt.db, rt.settings, order_id=order_id):
        return None  # the general path holds it for review (fulfil → fraud.hold_if_suspicious)
    with rt.db.write_gate(), rt.db.session(write=True) as session:
        now = _now()
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
            _PAYMENT_SUCCEEDED, {"b_order_id": order_id, "b_intent_id": intent.id, "b_now": now}
        )
        _, shipment = shipping.new_label(session, order_id=order_id, now=now)
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
                _CART_CLEAR,
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
        _store(session, placed.user_id, key, outcome, order_id)
        session.commit()
    return outcome


def _pay_and_finish(
    rt: CheckoutRuntime,
    order_id: str,
    *,
    user_id: int,
    key: str | None,
    events: Any,
    placed: Placed | None = None,
) -> Outcome:
    if placed is None:
        placed = _load_placed(rt, order_id)
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
                _store(session, user_id, key, outcome, order_id)
                session.commit()
                return outcome, False
            # Cancelled (shopper, recovery) while we were paying: the money goes back.
            _set_payment(session, order_id, intent, status="succeeded")
            problem = _cancelled_problem(order_id)
            _store(session, user_id, key, _problem_outcome(problem), order_id)
            session.commit()
            return _problem_outcome(problem), True
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
    except st.IllegalTransition:
        pass  # already compensated by someone else; nothing left to release
    # With no answer from the provider a charge may exist under the key: "pending" leaves the
    # payment for recovery to settle (void or refund) once the provider answers again.
    unresolved = intent is None and note in ("provider_timeout", "provider_unavailable")
    _set_payment(
        session, order_id, intent, status="pending" if unresolved else "failed", decline_code=code
    )
    extra = {"reason": note} if note else {}
    problem = PaymentDeclined(code, order_id, **extra)
    _store(session, user_id, key, _problem_outcome(problem), order_id)
    session.commit()
    return _problem_outcome(problem), intent is not None and intent.status == "processing"


def _cancelled_problem(order_id: str) -> ProblemError:
    return ProblemError(
        409,
        "Order cancelled",
        f"Order {order_id} was cancelled before payment completed; any charge is refunded",
        type_="https://storeloop.dev/problems/order-cancelled",
        order_id=order_id,
    )


def _store(
    session: Session, user_id: int, key: str | None, outcome: Outcome, order_id: str | None
) -> None:
    """Record the final response under the key (the transaction that made it final)."""
    if key is not None:
        session.connection().execute(
            _KEY_DONE,
            {
                "b_user_id": user_id,
                "b_key": key,
                "b_status": outcome.status,
                "b_body": outcome.body,
                "b_order_id": order_id,
            },
        )


def _resume(rt: CheckoutRuntime, order_id: str, *, user_id: int, key: str, events: Any) -> Outcome:
    """A retry took over a key whose request died: continue that order from its state."""
    with rt.db.session() as session:
        status = session.scalar(select(Order.status).where(Order.id == order_id))
    if status == st.RESERVED:
        return _pay_and_finish(rt, order_id, user_id=user_id, key=key, events=events)
    with rt.db.write_gate(), rt.db.session(write=True) as session:
        status = session.scalar(select(Order.status).where(Order.id == order_id))
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
    with rt.db.write_gate(), rt.db.session(write=True) as session:
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


def _parse_event(rt: CheckoutRuntime, body: bytes, signature: str | None) -> dict[str, Any]:
    verify(rt.settings.payment_webhook_secret, body, signature)
    try:
        event = orjson.loads(body)
        parsed = {
            "event_id": str(event["id"]),
            "event_type": str(event["type"]),
            "obj": event["data"]["object"],
        }
        parsed["order_id"] = (parsed["obj"].get("metadata") or {}).get("order_id")
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        raise Unprocessable("The webhook body is not a provider event") from None
    return parsed


def _receipt_statement(dialect: str, *, returning: bool = True):
    table = WebhookReceipt.__table__
    # RETURNING tells a recorded receipt from a replay (psycopg reports no rowcount for this).
    if dialect == "postgresql":
        stmt = postgresql.insert(table).on_conflict_do_nothing(index_elements=["event_id"])
    elif dialect == "sqlite":
        stmt = sqlite.insert(table).on_conflict_do_nothing(index_elements=["event_id"])
    else:
        stmt = insert(table)
    return stmt.returning(table.c.event_id) if returning else stmt


_RECEIPTS: dict[str, Any] = {}
_ORDER_AND_PAYMENT = (
    select(Order.status, Order.user_id, Payment.status.label("payment_status"))
    .outerjoin(Payment, Payment.order_id == Order.id)
    .where(Order.id == bindparam("b_order_id"))
)


def receive_webhook(rt: CheckoutRuntime, *, body: bytes, signature: str | None) -> dict[str, Any]:
    """Apply one provider event; replays are acknowledged and ignored (event id dedupe).

    Order of arrival does not matter: each event is checked against the order's current state
    and only moves it along legal transitions. A late ``succeeded`` for a dead order is
    recorded and refunded, never allowed to revive it.
    """
    return _apply_events(rt, [_parse_event(rt, body, signature)])[0]


def receive_webhooks(rt: CheckoutRuntime, deliveries: list[tuple[bytes, str]]) -> None:
    """In-process delivery of a batch of queued events: one write transaction for all of them.

    Each event runs in its own savepoint, so one that fails is rolled back alone (and logged;
    recovery reconciles its order) while the rest are applied. Replays inside the batch are
    deduplicated by the receipt as usual.
    """
    parsed = []
    for body, signature in deliveries:
        try:
            parsed.append(_parse_event(rt, body, signature))
        except ProblemError:
            log.warning("dropping an invalid in-process webhook", exc_info=True)
    rest = _confirm_settled(rt, parsed) if parsed else []
    if rest:
        _apply_events(rt, rest)


_SETTLED = (
    select(Order.id)
    .join(Payment, Payment.order_id == Order.id)
    .where(
        Order.id.in_(bindparam("b_ids", expanding=True)),
        Order.status.in_(sorted(st.CHARGED)),
        Payment.status == "succeeded",
    )
)
_CONFIRMATIONS: dict[str, Any] = {}


def _confirm_settled(rt: CheckoutRuntime, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Record the confirmations of a batch in two statements; return the other events.

    A "succeeded" event for an order whose request already settled it (the common case: the
    provider confirms what the checkout saw) changes nothing but its receipt, which
    :func:`_apply_event` would find out with two statements per event. Here one read finds
    them all and one multi-row insert records their receipts (a replayed one is skipped by the
    unique event id, as there)."""
    candidates = [
        e for e in events if e["event_type"] == "payment_intent.succeeded" and e.get("order_id")
    ]
    if len(candidates) < 2:
        return events
    with rt.db.write_gate(), rt.db.session(write=True) as session:
        conn = session.connection()
        ids = sorted({e["order_id"] for e in candidates})
        settled = {row[0] for row in conn.execute(_SETTLED, {"b_ids": ids})}
        confirmed = [e for e in candidates if e["order_id"] in settled]
        if confirmed:
            dialect = conn.dialect.name
            receipts = _CONFIRMATIONS.get(dialect)
            if receipts is None:
                receipts = _CONFIRMATIONS[dialect] = _receipt_statement(dialect, returning=False)
            now = utcnow()
            conn.execute(
                receipts,
                [
                    {
                        "event_id": e["event_id"],
                        "event_type": e["event_type"][:60],
                        "received_at": now,
                    }
                    for e in confirmed
                ],
            )
        session.commit()
    done = {id(e) for e in confirmed}
    return [e for e in events if id(e) not in done]


def _apply_events(rt: CheckoutRuntime, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """All of ``events`` in one transaction; if one fails, again with a savepoint each.

    A savepoint per event would cost two more statements each on the common path, where every
    event applies cleanly; so a batch runs bare first, and only a batch that hit an error is
    replayed with each event isolated (the failing one rolled back alone and logged).
    """
    if len(events) > 1:
        try:
            return _apply_batch(rt, events, isolate=False)
        except Exception:
            log.warning("a webhook batch failed; applying its events one by one", exc_info=True)
    return _apply_batch(rt, events, isolate=len(events) > 1)


def _apply_batch(
    rt: CheckoutRuntime, events: list[dict[str, Any]], *, isolate: bool
) -> list[dict[str, Any]]:
    answers: list[dict[str, Any]] = []
    to_settle: list[str] = []
    with rt.db.write_gate(), rt.db.session(write=True) as session:
        conn = session.connection()
        dialect = conn.dialect.name
        receipt = _RECEIPTS.get(dialect)
        if receipt is None:
            receipt = _RECEIPTS[dialect] = _receipt_statement(dialect)
        for event in events:
            savepoint = session.begin_nested() if isolate else None
            try:
                answer, settle_it = _apply_event(session, receipt, event)
            except Exception:
                if savepoint is None:
                    raise
                savepoint.rollback()
                log.exception("webhook %s could not be applied", event["event_id"])
                answers.append({"received": False})
                continue
            if savepoint is not None:
                savepoint.commit()
            answers.append(answer)
            if settle_it:
                to_settle.append(event["order_id"])
        session.commit()
    for order_id in to_settle:
        settle(rt, order_id)
    return answers


def _apply_event(session: Session, receipt: Any, event: dict[str, Any]) -> tuple[dict, bool]:
    """One event inside the caller's transaction; returns the answer and whether to settle."""
    event_id, event_type = event["event_id"], event["event_type"]
    obj, order_id = event["obj"], event["order_id"]
    recorded = session.connection().execute(
        receipt, {"event_id": event_id, "event_type": event_type[:60], "received_at": utcnow()}
    )
    if recorded.first() is None:
        return {"received": True, "duplicate": True}, False
    need_settle = False
    order = session.execute(_ORDER_AND_PAYMENT, {"b_order_id": order_id}).first()
    if order is None:
        return {"received": True, "ignored": "unknown order"}, False
    intent_id = obj.get("id")
    status, moved = order.status, False
    if (
        event_type == "payment_intent.succeeded"
        and status in st.CHARGED
        and order.payment_status == "succeeded"
    ):
        return {"received": True}, False  # the request settled it already: a confirmation
    if event_type == "payment_intent.succeeded" and status == st.RESERVED:
        try:
            st.transition(
                session,
                order_id=order_id,
                to=st.PAID,
                only_from={st.RESERVED},
                reason="webhook",
            )
            moved = True
        except st.IllegalTransition as exc:  # the request's T2 (or a cancel) just won
            status = exc.extensions.get("current_status")
    if event_type == "payment_intent.succeeded":
        if moved:
            session.execute(
                update(Payment)
                .where(Payment.order_id == order_id)
                .values(status="succeeded", intent_id=intent_id, updated_at=utcnow())
            )
            fulfil(session, order_id=order_id)
        elif status in st.CHARGED:
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
            .where(Payment.order_id == order_id, Payment.refunded_minor < obj["amount_refunded"])
            .values(refunded_minor=int(obj["amount_refunded"]), updated_at=utcnow())
        )
    return {"received": True}, need_settle
