"""Group commit for POST /orders: one thread per worker runs the queued checkouts in batches.

Why: every order of the per-order saga (:mod:`checkout`) takes the database's write path three
times (T1, the provider's intent, T2) and issues some twenty statements one by one. On SQLite
each of those transactions is a turn of the one write lock, handed between threads and worker
processes; on a small machine the statements' fixed cost, not the rows, is what saturates the
CPU at a few hundred orders a second. A batch of N waiting orders runs the same saga with
N-row statements::

    T1  one transaction: which keys exist, prices, stock (FOR UPDATE on PostgreSQL); then per
        order in arrival order: accepted if its lines fit the stock left, else a stored 409;
        insert keys, orders, lines, saga log, payments, movements; reserve per product
    P   provider.charge_many: one provider transaction, no shop transaction open
    T2  one transaction: reserved → paid → fulfilled, payments, labels, emails, keys done

The rows, states and stored answers are the per-order saga's, and so is crash safety: a crash
between T1 and T2 leaves ``reserved`` orders that recovery compensates. A batch is only as big
as the queue that built up while the previous one ran, so a lone order waits for nothing.

Anything unusual leaves the batch for the per-order path, which already handles it: a key that
exists (replay, in-flight duplicate, resume), a key twice in one batch (after the first is
done), a card that would not simply succeed, an open breaker, fraud review, test hooks other
than the provider delay, and any error inside a batch (its transaction rolls back, then each
order goes on one by one from where the batch left it).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, or_, select, update

from serving.core import clock, ids
from serving.core.errors import ProblemError, Unauthorized
from serving.db.bulk import Bound, BulkInsert, BulkStatement, fetch_all, run_all
from serving.db.tables import Inventory, StockMovement, User
from serving.db.tables.cart import CartItem
from serving.db.tables.idempotency import IdempotencyKey
from serving.db.tables.orders import Order, OrderLine
from serving.db.tables.payments import Payment
from serving.services import checkout, idempotency, inventory, notifications, shipping
from serving.services import order_states as st
from serving.services.checkout import CheckoutRuntime, Outcome, Placed
from serving.services.payments import ChargeRequest, Intent, MethodInfo

log = logging.getLogger("storeloop.checkout.batch")

_CART = CartItem.__table__
_INVENTORY = Inventory.__table__
# Multi-row inserts of T1 (serving/db/bulk.py): compiled once, rows bound as tuples.
_BULK_KEYS = BulkInsert(IdempotencyKey.__table__)
_BULK_ORDERS = BulkInsert(Order.__table__)
_BULK_LINES = BulkInsert(OrderLine.__table__)
_BULK_PAYMENTS = BulkInsert(Payment.__table__)
_BULK_MOVEMENTS = BulkInsert(StockMovement.__table__)
# The stock rows are read locked before this runs, so the reservation needs no condition of
# its own; were it ever to overdraw, the inventory's CHECK (reserved <= on_hand) fails it and,
# with it, the whole transaction, the COMMIT sent in the same round trip included.
_RESERVE_MANY = BulkStatement(
    update(_INVENTORY)
    .where(_INVENTORY.c.product_id == bindparam("b_product_id"))
    .values(
        reserved=_INVENTORY.c.reserved + bindparam("b_quantity"), updated_at=bindparam("b_now")
    ),
    one_statement=True,  # one row per product, all locked already
)
# One execution per order, in order id order: the lock order every writer of orders keeps.
_MOVE_MANY = BulkStatement(st._MOVE)
# One row per order, one key per order: each row of values updates a row of its own.
_PAYMENTS_SUCCEEDED = BulkStatement(checkout._PAYMENT_SUCCEEDED, one_statement=True)
_KEYS_DONE = BulkStatement(checkout._KEY_DONE, one_statement=True)
_USERS = User.__table__
_ACTIVE_USERS = select(_USERS.c.id).where(
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
_STOCK = _locked_stock(_NAMED_STOCK)
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
_STILL_RESERVED = (
    select(_ORDERS.c.id)
    .where(_ORDERS.c.id.in_(bindparam("b_ids", expanding=True)), _ORDERS.c.status == st.RESERVED)
    .order_by(_ORDERS.c.id)
    .with_for_update()
)

#: Hooks the batch honours; any other test hook sends orders down the per-order path.
_BATCH_HOOKS = frozenset({"provider_delay_ms"})


@dataclass(eq=False)
class _Job:
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
class _Reserved:
    """What T1 decided: orders to charge, answers to give, jobs for the per-order path."""

    accepted: list[_Job] = field(default_factory=list)
    answers: list[tuple[_Job, Outcome | BaseException]] = field(default_factory=list)
    deferred: list[_Job] = field(default_factory=list)


class CheckoutBatcher:
    """The worker's checkout queue and the thread that drains it in batches."""

    def __init__(
        self,
        rt: CheckoutRuntime,
        *,
        max_batch: int = 64,
        threads: int = 1,
        fallback_threads: int = 4,
        start: bool = True,
    ):
        """``threads`` batches may be in flight at once. One is right for SQLite (one writer
        at a time anyway); on PostgreSQL a batch spends most of its time waiting for round
        trips and commits, so a second one overlapping it cuts the wait of the orders queued
        behind it. Two concurrent batches that share a product take its stock row in turn
        (FOR UPDATE); two that share an Idempotency-Key make the later one go one by one."""
        self.rt = rt
        # The batch's own connections on PostgreSQL: its statements stay prepared there.
        self._db = rt.db.private(pool_size=max(1, threads) + 1)
        self.max_batch = max_batch
        self.batches = 0
        self.batched_orders = 0
        self._counts = threading.Lock()
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._fallback = ThreadPoolExecutor(fallback_threads, thread_name_prefix="checkout-one")
        self._threads = [
            threading.Thread(target=self._run, name="checkout-batch", daemon=True)
            for _ in range(max(1, threads))
        ]
        if start:
            self.start()

    def start(self) -> None:
        """Start draining the queue (tests queue orders first to build one known batch)."""
        for thread in self._threads:
            thread.start()

    # ------------------------------------------------------------------ the request's side

    def accepts(self, body: dict[str, Any]) -> bool:
        """Whether this order may go through a batch (else: the per-order saga)."""
        rt = self.rt
        if rt.settings.fraud_enabled or not _BATCH_HOOKS.issuperset(rt.hooks):
            return False
        batchable = getattr(rt.provider, "batchable", None)
        return batchable is not None and batchable(body["payment_method"])

    async def place(
        self,
        *,
        user_id: int,
        key: str | None,
        body: dict[str, Any],
        events: Any,
        verify_user: bool = False,
    ) -> Outcome:
        """Queue one order and wait for its outcome (or the problem it raised).

        ``verify_user``: the caller's token is valid but nobody has checked lately that its
        user exists and is active; T1 does, for the whole batch in one read, and answers 401
        for an inactive one (nothing stored), as the per-order path's caller check would."""
        key = idempotency.check_key(key)
        method = self.rt.provider.method(body["payment_method"])  # cached: accepts() saw it
        if method is None:  # pragma: no cover - accepts() is only true for a known method
            return await asyncio.to_thread(self._one_by_one_sync, user_id, key, body, events)
        loop = asyncio.get_running_loop()
        job = _Job(
            user_id=user_id,
            key=key,
            body=body,
            fingerprint=idempotency.request_hash(body),
            method=method,
            events=events,
            loop=loop,
            future=loop.create_future(),
            clock=clock.simulated_override(),
            verify_user=verify_user,
        )
        self._queue.put(job)
        return await job.future

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=30)
        self._fallback.shutdown(wait=True)
        if self._db is not self.rt.db:
            self._db.dispose()

    # ------------------------------------------------------------------ the batch thread

    def _run(self) -> None:
        stopping = False
        while not stopping:
            job = self._queue.get()
            if job is None:
                return
            jobs = [job]
            while len(jobs) < self.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:  # one stop per thread: this one is ours
                    stopping = True
                    break
                jobs.append(more)
            try:
                self._batch(jobs)
            except BaseException as exc:  # pragma: no cover - each phase handles its own errors
                log.exception("checkout batch failed")
                for job in jobs:
                    _settle(job, exc)

    def _batch(self, jobs: list[_Job]) -> None:
        """Run the jobs in groups that share one clock (real time, or one simulated time)."""
        groups: dict[datetime | None, list[_Job]] = defaultdict(list)
        for job in jobs:
            groups[job.clock].append(job)
        for when, group in groups.items():
            token = clock.set_simulated_now(when)
            try:
                self._batch_group(group)
            finally:
                clock.reset_simulated_now(token)

    def _batch_group(self, jobs: list[_Job]) -> None:
        seen: set[tuple[int, str]] = set()
        batch, repeats = [], []
        for job in jobs:
            (repeats if (job.user_id, job.key) in seen else batch).append(job)
            seen.add((job.user_id, job.key))
        try:
            reserved = self._reserve(batch)
        except Exception:
            log.warning(
                "batched reservation failed; %d orders go one by one", len(batch), exc_info=True
            )
            reserved = _Reserved(deferred=batch)
        _settle_all(reserved.answers)
        _emit_all(
            [
                (job, "order_placed", {"user_id": job.user_id, "order_id": job.order_id})
                for job in reserved.accepted
            ]
        )
        if reserved.accepted:
            with self._counts:
                self.batches += 1
                self.batched_orders += len(reserved.accepted)
            self._pay(reserved.accepted)
        # Known keys and repeats last: a repeat of a key in this batch now finds it done.
        for job in reserved.deferred + repeats:
            self._fallback.submit(_on_clock, job, self._one_by_one, job)

    def _transaction(self, prepare: Any, write: Any) -> Any:
        """``write(conn, prepare(conn))`` in one write transaction, but on SQLite with
        ``prepare`` (the reads and the rows' binding) done first on a read connection.

        The write lock is the one thing both workers' batches, the provider and the outbox
        queue for; held through the Python work of a batch it was busy nearly all the time at
        300 orders/s, and every stall of this thread on the GIL stalled the other worker too.
        On PostgreSQL there is no such lock and both run in the one transaction."""
        db = self._db
        if not db.is_sqlite:
            with db.writer.begin() as conn:
                return write(conn, prepare(conn))
        with db.engine.connect() as conn:
            prepared = prepare(conn)
        with db.write_gate(), db.writer.begin() as conn:
            return write(conn, prepared)

    def _reserve(self, batch: list[_Job]) -> _Reserved:
        """T1 for the whole batch; commits. Problems are answers, delivered after the commit.

        The reads that need no lock come first (callers, known keys, carts, prices), and every
        order's rows are bound as if all were accepted; under the lock only the stock is read
        and, when every order fits (the usual case), the bound rows are written as they are.
        A key that arrives between the two is caught by its unique index: the transaction
        rolls back and the batch goes one by one, which answers it as a known key."""
        rt = self.rt
        now = checkout._now()
        out = _Reserved()

        def prepare(conn: Any) -> _Priced:
            return self._price(conn, batch, out, now)

        def write(conn: Any, priced: _Priced) -> _Reserved:
            ids = priced.product_ids
            stock = priced.stock
            if stock is None:  # SQLite: read now, under the write lock
                stock = {}
                if ids:
                    (rows,) = fetch_all(conn, [(_STOCK, {"b_ids": ids})])
                    stock = {row[0]: row[1] for row in rows}
            taken: dict[int, int] = defaultdict(int)
            short: list[tuple[_Job, int]] = []
            fits: list[_Job] = []
            for job in priced.jobs:
                lines = priced.lines[job]
                missing = next(
                    (p for p in sorted(lines) if lines[p] > stock.get(p, 0) - taken[p]), None
                )
                if missing is not None:
                    short.append((job, missing))
                    continue
                for p, quantity in lines.items():
                    taken[p] += quantity
                fits.append(job)
            rows = priced.rows
            if short or rows is None:  # rare: bind again without the sold-out orders
                rows = _bind_reservations(rt, conn.dialect, fits, priced.placed, now)
            key_rows = []
            for job, missing in short:  # sold out: the 409 is stored with its key
                available = max(0, stock.get(missing, 0) - taken[missing])
                answer = checkout._problem_outcome(
                    inventory.OutOfStock(missing, priced.lines[job][missing], available)
                )
                key_rows.append(_key_row(rt, job, now, answer=answer))
                out.answers.append((job, answer))
            reserve = _RESERVE_MANY.bind(
                conn.dialect,
                [
                    {"b_product_id": p, "b_quantity": q, "b_now": now}
                    for p, q in sorted(taken.items())
                ],
            )
            # On PostgreSQL the COMMIT goes out with the statements: nothing is left to check
            # after them, since the stock rows are locked and an overdraft fails the CHECK.
            counts = run_all(
                conn,
                [
                    _BULK_KEYS.bind(conn.dialect, key_rows),
                    *rows.inserts,
                    reserve,  # the movements after it, as in the per-order saga
                    rows.movements,
                ],
                commit=True,
            )
            if counts[-2] != len(reserve):  # pragma: no cover - read locked, so never short
                raise RuntimeError("an inventory row vanished under a locked batch reservation")
            for job in fits:
                job.placed = priced.placed[job]
            out.accepted = fits
            return out

        return self._transaction(prepare, write)

    def _price(self, conn: Any, batch: list[_Job], out: _Reserved, now: datetime) -> _Priced:
        """T1's reads and the rows of every order that can be priced, bound for the write."""
        rt = self.rt
        # Every read at once (one round trip on PostgreSQL): callers, keys, carts, the named
        # items' prices and the users' addresses; a cart's products are priced after.
        lock_stock = not self._db.is_sqlite  # SQLite reads it under the write lock instead
        unchecked = sorted({j.user_id for j in batch if j.verify_user})
        owners = sorted({f"u:{j.user_id}" for j in batch if j.body.get("items") is None})
        named = {
            job: checkout._merge_lines(job.body["items"])
            for job in batch
            if job.body.get("items") is not None
        }
        item_ids = sorted({p for lines in named.values() for p in lines})
        queries: list[tuple[Any, dict[str, Any]]] = [
            idempotency.known_pairs_query(conn.dialect.name, [(j.user_id, j.key) for j in batch]),
            (notifications._EMAILS_OF, {"b_user_ids": sorted({j.user_id for j in batch})}),
        ]
        if unchecked:
            queries.append((_ACTIVE_USERS, {"b_ids": unchecked}))
        if owners:
            queries.append((_CARTS, {"b_owners": owners}))
        if item_ids:
            queries.append((checkout._PRICES, {"b_ids": item_ids}))
        if lock_stock:
            queries.append(
                (_STOCK_WITH_CARTS, {"b_ids": item_ids, "b_owners": owners})
                if owners
                else (_STOCK, {"b_ids": item_ids})
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
                later.append((checkout._PRICES, {"b_ids": missing}))
            if unstocked:
                later.append((_STOCK, {"b_ids": unstocked}))
            again = iter(fetch_all(conn, later))
            if missing:
                products.update({r.id: r for r in next(again)})
            if unstocked:
                stock.update({row[0]: row[1] for row in next(again)})
        priced = _Priced(product_ids=ids, stock=stock)
        for job in fresh:
            try:
                priced.placed[job] = checkout.price_order(
                    rt,
                    order_id=job.order_id,
                    user_id=job.user_id,
                    body=job.body,
                    method=job.method,
                    lines=wanted[job],
                    products=products,
                    from_cart=job.body.get("items") is None,
                    now=now,
                )
            except ProblemError as problem:
                out.answers.append((job, problem))  # nothing stored, as in the saga
                continue
            job.email = emails.get(job.user_id, "")
            priced.jobs.append(job)
            priced.lines[job] = wanted[job]
        priced.rows = _bind_reservations(rt, conn.dialect, priced.jobs, priced.placed, now)
        return priced

    def _pay(self, accepted: list[_Job]) -> None:
        """P then T2 for the accepted orders; on any trouble each order goes on by itself."""
        rt = self.rt
        delay = rt.hooks.get("provider_delay_ms")
        if delay:
            time.sleep(int(delay) / 1000)  # test hook: widen the crash window for the SIGKILL test
        requests = [
            ChargeRequest(
                amount_minor=job.placed.total_minor,
                currency=job.placed.currency,
                payment_method=job.placed.payment_method,
                idempotency_key=f"{job.order_id}:charge",
                metadata={"order_id": job.order_id},
            )
            for job in accepted
            if job.placed is not None
        ]
        try:
            intents = rt.provider.charge_many(requests)
        except Exception:
            # Nothing or everything was charged (one provider transaction); the per-order path
            # charges under the same keys, so a charge that did happen is found, not repeated.
            log.warning(
                "batched charge failed; %d orders go one by one", len(accepted), exc_info=True
            )
            for job in accepted:
                self._fallback.submit(_on_clock, job, self._charge_one, job)
            return
        try:
            done, moved_on = self._fulfil(accepted, intents)
        except Exception:
            log.warning("batched fulfilment failed; orders finish one by one", exc_info=True)
            done, moved_on = [], list(zip(accepted, intents, strict=True))
        _emit_all(
            [
                (
                    job,
                    "order_paid",
                    {
                        "user_id": job.user_id,
                        "order_id": job.order_id,
                        "props": {"total_minor": outcome.body["total_minor"]},
                    },
                )
                for job, outcome in done
            ]
        )
        _settle_all(done)
        # A webhook, a cancel or recovery moved these on first: the per-order ending knows how
        # to answer each (the same order, or a refund for a cancelled one).
        for job, intent in moved_on:
            self._fallback.submit(_on_clock, job, self._complete_one, job, intent)

    def _fulfil(
        self, accepted: list[_Job], intents: list[Intent]
    ) -> tuple[list[tuple[_Job, Outcome]], list[tuple[_Job, Intent]]]:
        """T2 for the whole batch: the per-order ``_finish_paid`` with N-row statements.

        Everything T2 writes is bound before the write lock is taken. Under it the statements
        run at once (one round trip on PostgreSQL), the first moving each order on from
        ``reserved`` only if it still is; when all moved (the usual case) the transaction
        commits. Otherwise it rolls back and a second one first reads, locked, which orders
        are still ``reserved``, and finishes those. Returns the finished orders with their
        outcomes, and those no longer ``reserved``."""
        now = checkout._now()
        db = self._db
        dialect = db.engine.dialect
        bound = _bind_fulfilment(dialect, accepted, intents, now)
        try:
            with db.write_gate(), db.writer.begin() as conn:
                counts = run_all(conn, [bound.moves, *bound.rest])
                if counts[0] != len(accepted):
                    raise _MovedOn  # rolls the transaction back
                self._clear_carts(conn, accepted)
            return list(zip(accepted, bound.outcomes, strict=True)), []
        except _MovedOn:
            pass
        with db.write_gate(), db.writer.begin() as conn:
            ids = [job.order_id for job in accepted]
            (rows,) = fetch_all(conn, [(_STILL_RESERVED, {"b_ids": ids})])
            still = {row[0] for row in rows}
            moved_on = [
                (job, intent)
                for job, intent in zip(accepted, intents, strict=True)
                if job.order_id not in still
            ]
            if moved_on:  # rare: a webhook, a cancel or recovery came first
                pairs = [
                    (job, intent)
                    for job, intent in zip(accepted, intents, strict=True)
                    if job.order_id in still
                ]
                if not pairs:
                    return [], moved_on
                accepted = [job for job, _ in pairs]
                intents = [intent for _, intent in pairs]
                bound = _bind_fulfilment(dialect, accepted, intents, now)
            # The checks run before the commit (the caller's), so nothing half-done can stay.
            counts = run_all(conn, [bound.moves, *bound.rest])
            if counts[0] != len(accepted):
                raise RuntimeError("orders moved on under a locked batch fulfilment")
            self._clear_carts(conn, accepted)
        return list(zip(accepted, bound.outcomes, strict=True)), moved_on

    @staticmethod
    def _clear_carts(conn: Any, accepted: list[_Job]) -> None:
        """Empty what cart orders bought from their carts (inside T2)."""
        for job in accepted:
            placed = job.placed
            if placed is not None and placed.from_cart:
                conn.execute(
                    checkout._CART_CLEAR,
                    {
                        "b_owner": f"u:{placed.user_id}",
                        "b_ids": [line["product_id"] for line in placed.lines],
                    },
                )

    # ------------------------------------------------------------------ one by one

    def _one_by_one_sync(
        self, user_id: int, key: str, body: dict[str, Any], events: Any
    ) -> Outcome:
        return checkout.place_order(self.rt, user_id=user_id, key=key, body=body, events=events)

    def _one_by_one(self, job: _Job) -> None:
        if job.verify_user and not self._user_active(job.user_id):
            _settle(job, Unauthorized("Invalid access token"))
            return
        _settle_call(job, self._one_by_one_sync, job.user_id, job.key, job.body, job.events)

    def _user_active(self, user_id: int) -> bool:
        with self.rt.db.engine.connect() as conn:
            return conn.execute(_ACTIVE_USERS, {"b_ids": [user_id]}).first() is not None

    def _charge_one(self, job: _Job) -> None:
        _settle_call(
            job,
            checkout._pay_and_finish,
            self.rt,
            job.order_id,
            user_id=job.user_id,
            key=job.key,
            events=job.events,
            placed=job.placed,
        )

    def _complete_one(self, job: _Job, intent: Intent) -> None:
        _settle_call(
            job,
            checkout.complete_charge,
            self.rt,
            job.placed,
            intent,
            None,
            user_id=job.user_id,
            key=job.key,
            events=job.events,
        )


class _MovedOn(Exception):
    """Some order of a batch was no longer ``reserved`` when T2 came to move it."""


@dataclass
class _BoundReservations:
    """T1's inserts for the accepted orders, bound (serving/db/bulk.py)."""

    keys: Bound
    orders: Bound
    lines: Bound
    path: Bound
    payments: Bound
    movements: Bound  # after the reservation UPDATE, as in the per-order saga

    @property
    def inserts(self) -> list[Bound]:
        """What goes before the reservation UPDATE."""
        return [self.keys, self.orders, self.lines, self.path, self.payments]


@dataclass
class _Priced:
    """T1's reads: the orders that could be priced, their lines, their bound rows."""

    product_ids: list[int]
    #: Available stock per product, read locked with the other reads (PostgreSQL); None on
    #: SQLite, which reads it under the write lock.
    stock: dict[int, int] | None = None
    jobs: list[_Job] = field(default_factory=list)
    lines: dict[_Job, dict[int, int]] = field(default_factory=dict)
    placed: dict[_Job, Placed] = field(default_factory=dict)
    rows: _BoundReservations | None = None


def _bind_reservations(
    rt: CheckoutRuntime,
    dialect: Any,
    jobs: list[_Job],
    placed: dict[_Job, Placed],
    now: datetime,
) -> _BoundReservations:
    """The rows of T1 for these orders: their keys in flight, orders, lines, log, payments."""
    rows = [checkout.reservation_rows(rt, placed[job], job.method) for job in jobs]
    return _BoundReservations(
        keys=_BULK_KEYS.bind(dialect, [_key_row(rt, job, now, answer=None) for job in jobs]),
        orders=_BULK_ORDERS.bind(dialect, [r.order for r in rows]),
        lines=_BULK_LINES.bind(dialect, [line for r in rows for line in r.lines]),
        path=st.bind_path(dialect, [step for r in rows for step in r.path]),
        payments=_BULK_PAYMENTS.bind(dialect, [r.payment for r in rows]),
        movements=_BULK_MOVEMENTS.bind(dialect, [m for r in rows for m in r.movements]),
    )


@dataclass
class _BoundFulfilment:
    """T2's statements for the paid orders, bound, and the answers they will give."""

    moves: Bound
    rest: list[Bound]
    outcomes: list[Outcome]


_FULFIL_STEPS = [(st.PAID, "charged"), (st.FULFILLED, "label")]


def _bind_fulfilment(
    dialect: Any, accepted: list[_Job], intents: list[Intent], now: datetime
) -> _BoundFulfilment:
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
    return _BoundFulfilment(moves, [path, payments, *labels.statements, emails, keys], outcomes)


def _key_row(rt: CheckoutRuntime, job: _Job, now: datetime, *, answer: Outcome | None) -> dict:
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


def _on_clock(job: _Job, fn: Any, *args: Any) -> None:
    """Run ``fn`` in a pool thread with the job's request clock."""
    token = clock.set_simulated_now(job.clock)
    try:
        fn(*args)
    finally:
        clock.reset_simulated_now(token)


def _settle_call(job: _Job, fn: Any, *args: Any, **kwargs: Any) -> None:
    try:
        result: Outcome | BaseException = fn(*args, **kwargs)
    except Exception as exc:
        result = exc
    _settle(job, result)


def _settle_all(results: list[tuple[_Job, Outcome | BaseException]]) -> None:
    """:func:`_settle` for many jobs with one wake-up per event loop (each wake-up of a loop
    from another thread is a write to its self-pipe)."""
    by_loop: dict[Any, list[tuple[_Job, Outcome | BaseException]]] = defaultdict(list)
    for job, result in results:
        by_loop[job.loop].append((job, result))
    for loop, items in by_loop.items():

        def deliver(items: list = items) -> None:
            for job, result in items:
                _deliver(job, result)

        try:
            loop.call_soon_threadsafe(deliver)
        except RuntimeError:  # pragma: no cover - the loop closed while the orders ran
            log.warning("%d orders finished after their event loop closed", len(items))


def _deliver(job: _Job, result: Outcome | BaseException) -> None:
    if job.future.done():  # the client went away; the order stands regardless
        return
    if isinstance(result, BaseException):
        job.future.set_exception(result)
    else:
        job.future.set_result(result)


def _emit_all(events: list[tuple[_Job, str, dict[str, Any]]]) -> None:
    """Log the batch's events with one hand-over to each event log, not one per event.

    Jobs whose sink cannot build records (tests' ``NoEvents``) emit one by one."""
    by_log: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for job, event_type, fields in events:
        sink = job.events
        records = getattr(sink, "records", None)
        target = getattr(sink, "log", None)
        try:
            if records is None:
                sink.emit(event_type, **fields)
            elif target is not None:
                by_log[target].append(records(event_type, **fields))
        except Exception:
            log.exception("could not log %s", event_type)
    for target, records in by_log.items():
        try:
            target.submit(records).add_done_callback(_report_failure)
        except Exception:
            log.exception("could not log %d checkout events", len(records))


def _report_failure(future: Any) -> None:
    if future.exception() is not None:
        log.error("event log write failed: %s", future.exception())


def _settle(job: _Job, result: Outcome | BaseException) -> None:
    """Hand the outcome (or the error to raise) to the waiting request, on its loop."""

    try:
        job.loop.call_soon_threadsafe(_deliver, job, result)
    except RuntimeError:  # pragma: no cover - the loop closed while the order ran
        log.warning("order %s finished after its request's event loop closed", job.order_id)
