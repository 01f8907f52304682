"""Group commit for POST /orders: one thread per worker runs the queued checkouts in batches.

Why: every order of the per-order saga (:mod:`saga`) takes the database's write path three
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

Coupons and automatic promotions stay in the batch: their counters are read locked with the
stock and each order takes its uses in memory, or is answered 409 like a sold-out product
(``pricing.promotions.BatchHolds``). Anything unusual leaves the batch for the per-order path,
which already handles it: a key that exists (replay, in-flight duplicate, resume), a key twice
in one batch (after the first is done), a card that would not simply succeed, an open breaker,
fraud review, test hooks other than the provider delay, and any error inside a batch (its
transaction rolls back, then each order goes on one by one from where the batch left it).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from serving.core import clock
from serving.core.errors import Unauthorized
from serving.db.bulk import fetch_all, run_all
from serving.services.checkout import idempotency
from serving.services.checkout.batch_rows import (
    ACTIVE_USERS,
    BULK_KEYS,
    BULK_REDEMPTIONS,
    RESERVE_MANY,
    STILL_RESERVED,
    STOCK,
    Job,
    Priced,
    Reserved,
    bind_fulfilment,
    bind_reservations,
    coupon_holds,
    key_row,
    price_batch,
)
from serving.services.checkout.handoff import deliver, deliver_all, deliver_call, emit_all, on_clock
from serving.services.checkout.payments import ChargeRequest, Intent
from serving.services.checkout.runtime import CheckoutRuntime
from serving.services.checkout.saga import complete_charge, pay_and_finish, place_order
from serving.services.checkout.steps import CART_CLEAR, Outcome, now_utc, problem_outcome
from serving.services.shop import inventory

log = logging.getLogger("storeloop.checkout.batch")

#: Hooks the batch honours; any other test hook sends orders down the per-order path.
_BATCH_HOOKS = frozenset({"provider_delay_ms"})


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
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
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
        job = Job(
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
                    deliver(job, exc)

    def _batch(self, jobs: list[Job]) -> None:
        """Run the jobs in groups that share one clock (real time, or one simulated time)."""
        groups: dict[datetime | None, list[Job]] = defaultdict(list)
        for job in jobs:
            groups[job.clock].append(job)
        for when, group in groups.items():
            token = clock.set_simulated_now(when)
            try:
                self._batch_group(group)
            finally:
                clock.reset_simulated_now(token)

    def _batch_group(self, jobs: list[Job]) -> None:
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
            reserved = Reserved(deferred=batch)
        deliver_all(reserved.answers)
        emit_all(
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
            self._fallback.submit(on_clock, job, self._one_by_one, job)

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

    def _reserve(self, batch: list[Job]) -> Reserved:
        """T1 for the whole batch; commits. Problems are answers, delivered after the commit.

        The reads that need no lock come first (callers, known keys, carts, prices), and every
        order's rows are bound as if all were accepted; under the lock only the stock is read
        and, when every order fits (the usual case), the bound rows are written as they are.
        A key that arrives between the two is caught by its unique index: the transaction
        rolls back and the batch goes one by one, which answers it as a known key."""
        rt = self.rt
        now = now_utc()
        out = Reserved()

        def prepare(conn: Any) -> Priced:
            return price_batch(rt, conn, batch, out, now, lock_stock=not self._db.is_sqlite)

        def write(conn: Any, priced: Priced) -> Reserved:
            ids = priced.product_ids
            stock = priced.stock
            if stock is None:  # SQLite: read now, under the write lock
                stock = {}
                if ids:
                    (rows,) = fetch_all(conn, [(STOCK, {"b_ids": ids})])
                    stock = {row[0]: row[1] for row in rows}
            # Promotions' uses, read locked after the stock (the lock order of every writer
            # of both), only when some order of the batch applies a promotion.
            holds = coupon_holds(conn, priced, now)
            taken: dict[int, int] = defaultdict(int)
            short: list[tuple[Job, int]] = []
            refused: list[tuple[Job, Outcome]] = []
            fits: list[Job] = []
            for job in priced.jobs:
                lines = priced.lines[job]
                missing = next(
                    (p for p in sorted(lines) if lines[p] > stock.get(p, 0) - taken[p]), None
                )
                if missing is not None:
                    short.append((job, missing))
                    continue
                if holds is not None:  # exhausted: a 409 like sold out, nothing held
                    exhausted = holds.take(
                        order_id=job.order_id, user_id=job.user_id, quote=priced.placed[job].quote
                    )
                    if exhausted is not None:
                        refused.append((job, problem_outcome(exhausted)))
                        continue
                for p, quantity in lines.items():
                    taken[p] += quantity
                fits.append(job)
            rows = priced.rows
            if short or refused or rows is None:  # rare: bind again without the refused
                rows = bind_reservations(rt, conn.dialect, fits, priced.placed, now)
            key_rows = []
            for job, missing in short:  # sold out: the 409 is stored with its key
                available = max(0, stock.get(missing, 0) - taken[missing])
                answer = problem_outcome(
                    inventory.OutOfStock(missing, priced.lines[job][missing], available)
                )
                key_rows.append(key_row(rt, job, now, answer=answer))
                out.answers.append((job, answer))
            for job, answer in refused:
                key_rows.append(key_row(rt, job, now, answer=answer))
                out.answers.append((job, answer))
            coupons = []  # the promotions' counters and redemption rows, after the orders
            if holds is not None:
                holds.write(conn)  # customers' counts (per-customer limits only)
                coupons = [
                    holds.counters(conn.dialect),
                    BULK_REDEMPTIONS.bind(conn.dialect, holds.redemptions),
                ]
            reserve = RESERVE_MANY.bind(
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
                    BULK_KEYS.bind(conn.dialect, key_rows),
                    *rows.inserts,
                    *coupons,
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

    def _pay(self, accepted: list[Job]) -> None:
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
                self._fallback.submit(on_clock, job, self._charge_one, job)
            return
        try:
            done, moved_on = self._fulfil(accepted, intents)
        except Exception:
            log.warning("batched fulfilment failed; orders finish one by one", exc_info=True)
            done, moved_on = [], list(zip(accepted, intents, strict=True))
        emit_all(
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
        deliver_all(done)
        # A webhook, a cancel or recovery moved these on first: the per-order ending knows how
        # to answer each (the same order, or a refund for a cancelled one).
        for job, intent in moved_on:
            self._fallback.submit(on_clock, job, self._complete_one, job, intent)

    def _fulfil(
        self, accepted: list[Job], intents: list[Intent]
    ) -> tuple[list[tuple[Job, Outcome]], list[tuple[Job, Intent]]]:
        """T2 for the whole batch: the per-order ``_finish_paid`` with N-row statements.

        Everything T2 writes is bound before the write lock is taken. Under it the statements
        run at once (one round trip on PostgreSQL), the first moving each order on from
        ``reserved`` only if it still is; when all moved (the usual case) the transaction
        commits. Otherwise it rolls back and a second one first reads, locked, which orders
        are still ``reserved``, and finishes those. Returns the finished orders with their
        outcomes, and those no longer ``reserved``."""
        now = now_utc()
        db = self._db
        dialect = db.engine.dialect
        bound = bind_fulfilment(dialect, accepted, intents, now)
        try:
            with db.write_gate(), db.writer.begin() as conn:
                counts = run_all(conn, [bound.moves, *bound.rest])
                if counts[0] != len(accepted):
                    raise _MovedOn  # rolls the transaction back
                self._clear_carts(conn, accepted)
            return list(zip(accepted, bound.outcomes, strict=True)), []
        except (_MovedOn, IntegrityError):
            # IntegrityError: an order that moved on already has its shipment (a webhook or
            # recovery fulfilled it), and the batch's label for it hit the unique order id
            # before the move count could say so. Both cases take the locked path below.
            pass
        with db.write_gate(), db.writer.begin() as conn:
            ids = [job.order_id for job in accepted]
            (rows,) = fetch_all(conn, [(STILL_RESERVED, {"b_ids": ids})])
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
                bound = bind_fulfilment(dialect, accepted, intents, now)
            # The checks run before the commit (the caller's), so nothing half-done can stay.
            counts = run_all(conn, [bound.moves, *bound.rest])
            if counts[0] != len(accepted):
                raise RuntimeError("orders moved on under a locked batch fulfilment")
            self._clear_carts(conn, accepted)
        return list(zip(accepted, bound.outcomes, strict=True)), moved_on

    @staticmethod
    def _clear_carts(conn: Any, accepted: list[Job]) -> None:
        """Empty what cart orders bought from their carts (inside T2)."""
        for job in accepted:
            placed = job.placed
            if placed is not None and placed.from_cart:
                conn.execute(
                    CART_CLEAR,
                    {
                        "b_owner": f"u:{placed.user_id}",
                        "b_ids": [line["product_id"] for line in placed.lines],
                    },
                )

    # ------------------------------------------------------------------ one by one

    def _one_by_one_sync(
        self, user_id: int, key: str, body: dict[str, Any], events: Any
    ) -> Outcome:
        return place_order(self.rt, user_id=user_id, key=key, body=body, events=events)

    def _one_by_one(self, job: Job) -> None:
        if job.verify_user and not self._user_active(job.user_id):
            deliver(job, Unauthorized("Invalid access token"))
            return
        deliver_call(job, self._one_by_one_sync, job.user_id, job.key, job.body, job.events)

    def _user_active(self, user_id: int) -> bool:
        with self.rt.db.engine.connect() as conn:
            return conn.execute(ACTIVE_USERS, {"b_ids": [user_id]}).first() is not None

    def _charge_one(self, job: Job) -> None:
        deliver_call(
            job,
            pay_and_finish,
            self.rt,
            job.order_id,
            user_id=job.user_id,
            key=job.key,
            events=job.events,
            placed=job.placed,
        )

    def _complete_one(self, job: Job, intent: Intent) -> None:
        deliver_call(
            job,
            complete_charge,
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
