"""The batch's SQL: prebuilt statements, T1's reads (:func:`price_batch`), and the rows of
T1 and T2 bound for many orders at once (:func:`bind_reservations`, :func:`bind_fulfilment`).

Kept apart from :mod:`batch` (the queue, the threads and the order of the phases) so that each
reads on its own; the rows are the per-order saga's (:mod:`pricing`, :mod:`steps`), N at a time.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, or_, select, update

from serving.core import ids
from serving.core.errors import ProblemError, Unauthorized
from serving.db.bulk import Bound, BulkInsert, BulkStatement, fetch_all
from serving.db.tables import Inventory, StockMovement, User
from serving.db.tables.cart import CartItem
from serving.db.tables.idempotency import IdempotencyKey
from serving.db.tables.marketplace import SellerLedgerEntry, SellerShipment
from serving.db.tables.orders import Order, OrderLine
from serving.db.tables.payments import Payment
from serving.db.tables.pricing import OrderCharge, PromotionRedemption
from serving.services import shipping
from serving.services.checkout import idempotency
from serving.services.checkout import order_states as st
from serving.services.checkout.payments import Intent, MethodInfo
from serving.services.checkout.pricing import (
    PRICES,
    Placed,
    merge_lines,
    price_order,
    reservation_rows,
)
from serving.services.checkout.runtime import CheckoutRuntime
from serving.services.checkout.steps import KEY_DONE, PAYMENT_SUCCEEDED, Outcome
from serving.services.infra import notifications
from serving.services.marketplace import fulfilment as marketplace
from serving.services.pricing import at_checkout, promotions

_CART = CartItem.__table__
_INVENTORY = Inventory.__table__
# Multi-row inserts of T1 (serving/db/bulk.py): compiled once, rows bound as tuples.
BULK_KEYS = BulkInsert(IdempotencyKey.__table__)
_BULK_ORDERS = BulkInsert(Order.__table__)
_BULK_LINES = BulkInsert(OrderLine.__table__)
_BULK_PAYMENTS = BulkInsert(Payment.__table__)
_BULK_MOVEMENTS = BulkInsert(StockMovement.__table__)
_BULK_CHARGES = BulkInsert(OrderCharge.__table__)
BULK_REDEMPTIONS = BulkInsert(PromotionRedemption.__table__)
_BULK_PARCELS = BulkInsert(SellerShipment.__table__)
_BULK_SELLER_LEDGER = BulkInsert(SellerLedgerEntry.__table__)
# The stock rows are read locked before this runs, so the reservation needs no condition of
# its own; were it ever to overdraw, the inventory's CHECK (reserved <= on_hand) fails it and,
# with it, the whole transaction, the COMMIT sent in the same round trip included.
RESERVE_MANY = BulkStatement(
    update(_INVENTORY)
    .where(_INVENTORY.c.product_id == bindparam("b_product_id"))
    .values(
        reserved=_INVENTORY.c.reserved + bindparam("b_quantity"), updated_at=bindparam("b_now")
    ),
    one_statement=True,  # one row per product, all locked already
)
# One execution per order, in order id order: the lock order every writer of orders keeps.
_MOVE_MANY = BulkStatement(st.MOVE)
# One row per order, one key per order: each row of values updates a row of its own.
_PAYMENTS_SUCCEEDED = BulkStatement(PAYMENT_SUCCEEDED, one_statement=True)
_KEYS_DONE = BulkStatement(KEY_DONE, one_statement=True)
_USERS = User.__table__
ACTIVE_USERS = select(_USERS.c.id).where(
    _USERS.c.id.in_(bindparam("b_ids", expanding=True)), _USERS.c.is_active.is_(True)
)
_CARTS = select(_CART.c.owner_key, _CART.c.product_id, _CART.c.quantity).where(
    _CART.c.owner_key.in_(bindparam("b_owners", expanding=True))
)


def _locked_stock(condition: Any) -> Any:
    """Available stock of the products ``condition`` picks, locked in product order on
    PostgreSQL (two batches never wait on each other in a cycle); the SQLite write lock
    already excludes every other writer."""
    return (
        select(_INVENTORY.c.product_id, _INVENTORY.c.on_hand - _INVENTORY.c.reserved)
        .where(condition)
        .order_by(_INVENTORY.c.product_id)
        .with_for_update()
    )


_NAMED_STOCK = _INVENTORY.c.product_id.in_(bindparam("b_ids", expanding=True))
STOCK = _locked_stock(_NAMED_STOCK)
# PostgreSQL: the same, for the named products and everything in the ordering carts, read
# with the batch's other reads in one round trip (the locks are the transaction's anyway).
_STOCK_WITH_CARTS = _locked_stock(
    or_(
        _NAMED_STOCK,
        _INVENTORY.c.product_id.in_(
            select(_CART.c.product_id).where(
                _CART.c.owner_key.in_(bindparam("b_owners", expanding=True))
            )
        ),
    )
)
_ORDERS = Order.__table__
STILL_RESERVED = (
    select(_ORDERS.c.id)
    .where(_ORDERS.c.id.in_(bindparam("b_ids", expanding=True)), _ORDERS.c.status == st.RESERVED)
    .order_by(_ORDERS.c.id)
    .with_for_update()
)

#: Hooks the batch honours; any other test hook sends orders down the per-order path.


@dataclass(eq=False)
class Job:
    user_id: int
    key: str
    body: dict[str, Any]
    fingerprint: str
    method: MethodInfo
    events: Any
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future
    #: The caller's user still has to be found active (T1 reads them all in one query).
    verify_user: bool = False
    #: The request's simulated time (synthetic shoppers), carried to the batch thread.
    clock: datetime | None = None
    order_id: str = field(default_factory=lambda: "ord_" + ids.token_hex(10))
    placed: Placed | None = None
    #: The user's address for the confirmation email (read in T1, written in T2).
    email: str = ""


@dataclass
class Reserved:
    """What T1 decided: orders to charge, answers to give, jobs for the per-order path."""

    accepted: list[Job] = field(default_factory=list)
    answers: list[tuple[Job, Outcome | BaseException]] = field(default_factory=list)
    deferred: list[Job] = field(default_factory=list)


@dataclass
class BoundReservations:
    """T1's inserts for the accepted orders, bound (serving/db/bulk.py)."""

    keys: Bound
    orders: Bound
    lines: Bound
    path: Bound
    payments: Bound
    movements: Bound  # after the reservation UPDATE, as in the per-order saga
    charges: Bound  # the figures fixed on each order (serving/services/pricing)

    @property
    def inserts(self) -> list[Bound]:
        """What goes before the reservation UPDATE."""
        return [self.keys, self.orders, self.lines, self.path, self.payments, self.charges]


@dataclass
class Priced:
    """T1's reads: the orders that could be priced, their lines, their bound rows."""

    product_ids: list[int]
    #: Available stock per product, read locked with the other reads (PostgreSQL); None on
    #: SQLite, which reads it under the write lock.
    stock: dict[int, int] | None = None
    jobs: list[Job] = field(default_factory=list)
    lines: dict[Job, dict[int, int]] = field(default_factory=dict)
    placed: dict[Job, Placed] = field(default_factory=dict)
    rows: BoundReservations | None = None


def bind_reservations(
    rt: CheckoutRuntime,
    dialect: Any,
    jobs: list[Job],
    placed: dict[Job, Placed],
    now: datetime,
) -> BoundReservations:
    """The rows of T1 for these orders: their keys in flight, orders, lines, log, payments."""
    rows = [reservation_rows(rt, placed[job], job.method) for job in jobs]
    return BoundReservations(
        keys=BULK_KEYS.bind(dialect, [key_row(rt, job, now, answer=None) for job in jobs]),
        orders=_BULK_ORDERS.bind(dialect, [r.order for r in rows]),
        lines=_BULK_LINES.bind(dialect, [line for r in rows for line in r.lines]),
        path=st.bind_path(dialect, [step for r in rows for step in r.path]),
        payments=_BULK_PAYMENTS.bind(dialect, [r.payment for r in rows]),
        movements=_BULK_MOVEMENTS.bind(dialect, [m for r in rows for m in r.movements]),
        charges=_BULK_CHARGES.bind(
            dialect,
            [at_checkout.charge_row(placed[job].order_id, placed[job].quote, now) for job in jobs],
        ),
    )


@dataclass
class BoundFulfilment:
    """T2's statements for the paid orders, bound, and the answers they will give."""

    moves: Bound
    rest: list[Bound]
    outcomes: list[Outcome]


_FULFIL_STEPS = [(st.PAID, "charged"), (st.FULFILLED, "label")]


def bind_fulfilment(
    dialect: Any, accepted: list[Job], intents: list[Intent], now: datetime
) -> BoundFulfilment:
    placed = [job.placed for job in accepted]
    assert all(p is not None for p in placed)
    labels = shipping.bind_labels(dialect, order_ids=[p.order_id for p in placed], now=now)
    outcomes = [
        Outcome(
            201,
            p.body(status=st.FULFILLED, updated_at=now, payment="succeeded", shipment=label),
        )
        for p, label in zip(placed, labels.shown, strict=True)
    ]
    # In order id order: the orders' row locks are taken in the order that every other
    # writer of several orders (recovery, the locked second try) takes them.
    moves = _MOVE_MANY.bind(
        dialect,
        [
            {"b_order_id": p.order_id, "b_from": st.RESERVED, "b_to": st.FULFILLED, "b_now": now}
            for p in sorted(placed, key=lambda p: p.order_id)
        ],
    )
    path = st.bind_path(
        dialect,
        [
            row
            for p in placed
            for row in st.path_rows(
                order_id=p.order_id, start=st.RESERVED, steps=_FULFIL_STEPS, now=now
            )
        ],
    )
    payments = _PAYMENTS_SUCCEEDED.bind(
        dialect,
        [
            {"b_order_id": p.order_id, "b_intent_id": intent.id, "b_now": now}
            for p, intent in zip(placed, intents, strict=True)
        ],
    )
    emails = notifications.bind_many(
        dialect,
        kind="order_confirmed",
        messages=[
            (p.user_id, p.order_id, {"total": f"{p.total_minor / 100:.2f}", "currency": p.currency})
            for p in placed
        ],
        emails={job.user_id: job.email for job in accepted},
    )
    keys = _KEYS_DONE.bind(
        dialect,
        [
            {
                "b_user_id": job.user_id,
                "b_key": job.key,
                "b_status": 201,
                "b_body": outcome.body,
                "b_order_id": job.order_id,
            }
            for job, outcome in zip(accepted, outcomes, strict=True)
        ],
    )
    # Each seller's parcel, sale and commission, in the transaction that labels the order (an
    # order of the platform's own products only binds nothing and runs nothing more).
    parcels, entries = [], []
    for p in placed:
        if p.sellers:
            rows = marketplace.opening_rows(
                order_id=p.order_id, currency=p.currency, shares=p.sellers, now=now
            )
            parcels += rows[0]
            entries += rows[1]
    sellers = [_BULK_PARCELS.bind(dialect, parcels), _BULK_SELLER_LEDGER.bind(dialect, entries)]
    return BoundFulfilment(
        moves, [path, payments, *labels.statements, *sellers, emails, keys], outcomes
    )


def coupon_holds(conn: Any, priced: Priced, now: datetime) -> promotions.BatchHolds | None:
    """The counters of the promotions the batch's orders apply, read locked; None if none."""
    quotes = [(job.user_id, priced.placed[job].quote) for job in priced.jobs]
    applied = [(user_id, a["promotion_id"]) for user_id, q in quotes for a in q.redemptions]
    if not applied:
        return None
    return promotions.BatchHolds(
        conn,
        promotion_ids=[pid for _, pid in applied],
        user_ids=[user_id for user_id, _ in applied],
        now=now,
    )


def key_row(rt: CheckoutRuntime, job: Job, now: datetime, *, answer: Outcome | None) -> dict:
    """The idempotency key's row: in flight for an accepted order, done for a sold-out one."""
    hours = rt.settings.idempotency_key_hours
    if answer is None:
        locked = now + timedelta(seconds=rt.settings.checkout_saga_timeout_seconds)
    else:
        locked = now
    return {
        "user_id": job.user_id,
        "key": job.key,
        "request_hash": job.fingerprint,
        "status": "in_flight" if answer is None else "done",
        "order_id": job.order_id if answer is None else None,
        "response_status": None if answer is None else answer.status,
        "response_body": None if answer is None else answer.body,
        "locked_until": locked,
        "created_at": now,
        "expires_at": now + timedelta(hours=hours),
    }


def price_batch(
    rt: CheckoutRuntime,
    conn: Any,
    batch: list[Job],
    out: Reserved,
    now: datetime,
    *,
    lock_stock: bool,
) -> Priced:
    """T1's reads and the rows of every order that can be priced, bound for the write."""
    # Every read at once (one round trip on PostgreSQL): callers, keys, carts, the named
    # items' prices and the users' addresses; a cart's products are priced after.
    # ``lock_stock``: PostgreSQL; SQLite reads the stock under the write lock instead.
    unchecked = sorted({j.user_id for j in batch if j.verify_user})
    owners = sorted({f"u:{j.user_id}" for j in batch if j.body.get("items") is None})
    named = {
        job: merge_lines(job.body["items"]) for job in batch if job.body.get("items") is not None
    }
    item_ids = sorted({p for lines in named.values() for p in lines})
    queries: list[tuple[Any, dict[str, Any]]] = [
        idempotency.known_pairs_query(conn.dialect.name, [(j.user_id, j.key) for j in batch]),
        (notifications.EMAILS_OF, {"b_user_ids": sorted({j.user_id for j in batch})}),
    ]
    if unchecked:
        queries.append((ACTIVE_USERS, {"b_ids": unchecked}))
    if owners:
        queries.append((_CARTS, {"b_owners": owners}))
    if item_ids:
        queries.append((PRICES, {"b_ids": item_ids}))
    if lock_stock:
        queries.append(
            (_STOCK_WITH_CARTS, {"b_ids": item_ids, "b_owners": owners})
            if owners
            else (STOCK, {"b_ids": item_ids})
        )
    results = iter(fetch_all(conn, queries))
    known = {(row[0], row[1]) for row in next(results)}
    emails = {row[0]: row[1] for row in next(results)}
    if unchecked:
        active = {row[0] for row in next(results)}
        refused = {j for j in batch if j.verify_user and j.user_id not in active}
        out.answers += [(job, Unauthorized("Invalid access token")) for job in refused]
        batch = [job for job in batch if job not in refused]
    carts: dict[str, dict[int, int]] = defaultdict(dict)
    for row in next(results) if owners else ():
        carts[row.owner_key][row.product_id] = row.quantity
    products = {r.id: r for r in next(results)} if item_ids else {}
    stock = {row[0]: row[1] for row in next(results)} if lock_stock else None
    fresh = []
    for job in batch:
        (out.deferred if (job.user_id, job.key) in known else fresh).append(job)
    wanted = {job: named[job] if job in named else carts[f"u:{job.user_id}"] for job in fresh}
    ids = sorted({p for lines in wanted.values() for p in lines})
    missing = [p for p in ids if p not in products and p not in item_ids]
    # A cart that changed between the reads (or a product without a stock row) is read
    # again; a product in no stock row has none to sell.
    unstocked = [p for p in ids if p not in stock] if stock is not None else []
    if missing or unstocked:
        later: list[tuple[Any, dict[str, Any]]] = []
        if missing:
            later.append((PRICES, {"b_ids": missing}))
        if unstocked:
            later.append((STOCK, {"b_ids": unstocked}))
        again = iter(fetch_all(conn, later))
        if missing:
            products.update({r.id: r for r in next(again)})
        if unstocked:
            stock.update({row[0]: row[1] for row in next(again)})
    priced = Priced(product_ids=ids, stock=stock)
    snap = at_checkout.load_for(
        conn, rt.settings, [(wanted[job], job.body, job.user_id) for job in fresh], now
    )
    for job in fresh:
        try:
            priced.placed[job] = price_order(
                rt,
                order_id=job.order_id,
                user_id=job.user_id,
                body=job.body,
                method=job.method,
                lines=wanted[job],
                products=products,
                from_cart=job.body.get("items") is None,
                now=now,
                snap=snap,
            )
        except ProblemError as problem:
            out.answers.append((job, problem))  # nothing stored, as in the saga
            continue
        job.email = emails.get(job.user_id, "")
        priced.jobs.append(job)
        priced.lines[job] = wanted[job]
    priced.rows = bind_reservations(rt, conn.dialect, priced.jobs, priced.placed, now)
    return priced
