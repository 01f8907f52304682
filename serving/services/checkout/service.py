"""The checkout's front door: what the orders route, the fast-path middleware and create_app
call, so neither of the first two needs the other.

* :func:`place`: one POST /orders, batched (:mod:`batch`) when it qualifies, else the
  per-order saga (:mod:`saga`) in the threadpool; :func:`order_response` renders its answer;
* :func:`checkout_caller`: who is ordering, checked without a database read on a cache miss;
* :func:`runtime` / :func:`build_runtime`: the app's :class:`CheckoutRuntime`;
* :func:`start_checkout`: webhook delivery, recovery and the outbox, started by create_app.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from serving.core.config import Settings
from serving.core.errors import PROBLEM_JSON, ProblemError, Unauthorized
from serving.db.engine import Database
from serving.services.checkout import holds, webhooks
from serving.services.checkout.batch import CheckoutBatcher
from serving.services.checkout.recovery import recovery_loop
from serving.services.checkout.runtime import CheckoutRuntime
from serving.services.checkout.saga import place_order
from serving.services.checkout.steps import Outcome
from serving.services.infra.outbox import OutboxWorker
from serving.services.shop.caller_cache import MISS, check_caller

PATH = "/api/v1/orders"


def build_runtime(db: Database, settings: Settings, event_log: Any = None) -> CheckoutRuntime:
    """A runtime whose in-process webhooks are applied by :mod:`webhooks`; also sets this
    process's fraud rules (:mod:`holds`) from ``settings``."""
    holds.configure(settings)
    return CheckoutRuntime(
        db,
        settings,
        event_log,
        receive_webhook=webhooks.receive_webhook,
        receive_webhooks=webhooks.receive_webhooks,
    )


def runtime(app: Any) -> CheckoutRuntime:
    """The app's checkout runtime (built on first use if :func:`start_checkout` did not run)."""
    c = app.state.components
    if c.checkout is None:
        c.checkout = build_runtime(c.db, c.settings, c.event_log)
    return c.checkout


def batcher(rt: CheckoutRuntime) -> CheckoutBatcher | None:
    """The worker's checkout batcher, started on first use; None when batching is off."""
    if not rt.settings.checkout_batching:
        return None
    with rt.batcher_lock:
        if rt.batcher is None:
            rt.batcher = CheckoutBatcher(
                rt,
                max_batch=rt.settings.checkout_batch_max,
                threads=rt.settings.checkout_batch_threads,
            )
        return rt.batcher


class Buyer(Protocol):
    """Who places an order, as :func:`place` needs it: the route's ``deps.Caller`` and the fast
    path's :class:`CheckoutCaller` both are one."""

    @property
    def user_id(self) -> int: ...

    @property
    def vouched(self) -> bool: ...

    def check(self) -> Any: ...


@dataclass(frozen=True)
class CheckoutCaller:
    """A checkout's caller: the token is verified; ``vouched`` when a fresh cached row already
    shows the user active, else the check is still to be made (by the batch, in T1)."""

    user_id: int
    vouched: bool
    #: The full check (a read) the per-order path makes for a caller nobody vouched for.
    check: Callable[[], Any] = field(repr=False)


def checkout_caller(tokens: Any, callers: Any, token: str | None) -> CheckoutCaller:
    """Verify the bearer token without reading the database on a cache miss: the batch reads
    every waiting caller's user in one query inside its first transaction instead (a read on
    the event loop cost more than the rest of the request's handling). 401 when the token is
    missing or invalid, or a cached row shows the user inactive."""
    if token is None:
        raise Unauthorized()
    user_id = tokens.verify(token).user_id
    row = callers.peek(token)
    if row is not MISS and (row is None or not row.is_active):
        raise Unauthorized("Invalid access token")
    return CheckoutCaller(
        user_id, vouched=row is not MISS, check=lambda: check_caller(tokens, callers, token)
    )


async def place(
    rt: CheckoutRuntime,
    *,
    caller: Buyer,
    key: str | None,
    body: dict[str, Any],
    events: Any,
    batched_only: bool = False,
) -> Outcome | None:
    """Place one order: join the worker's next batch if it qualifies, else run the saga in the
    threadpool, at most ``checkout_concurrency`` at once in this worker. The saga runs its own
    short transactions: nothing holds the database while the payment provider is called.

    ``batched_only`` (the fast path): None instead of the per-order saga, for the route to
    handle. Problems are raised (:class:`ProblemError`), as the saga raises them.
    """
    group = batcher(rt)
    if group is not None and group.accepts(body):
        return await group.place(
            user_id=caller.user_id,
            key=key,
            body=body,
            events=events,
            verify_user=not caller.vouched,
        )
    if batched_only:
        return None
    if not caller.vouched:
        caller.check()
    async with _slots(rt):
        return await run_in_threadpool(
            place_order, rt, user_id=caller.user_id, key=key, body=body, events=events
        )


def _slots(rt: CheckoutRuntime) -> asyncio.Semaphore:
    """The worker's checkout semaphore (made on first use, inside the serving event loop)."""
    if rt.slots is None:
        limit = rt.settings.checkout_concurrency or (2 if rt.db.is_sqlite else 8)
        rt.slots = asyncio.Semaphore(limit)
    return rt.slots


def order_response(outcome: Outcome) -> Response:
    """A checkout's answer: the order (201, or the first answer replayed) or its problem.

    The route and the fast path both answer with it, so both give the same bytes."""
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else {}
    if outcome.status == 201:
        headers["Location"] = f"{PATH}/{outcome.body['id']}"
    return Response(
        orjson.dumps(outcome.body),
        status_code=outcome.status,
        headers=headers,
        media_type=PROBLEM_JSON if outcome.status >= 400 else "application/json",
    )


def problem_response(problem: ProblemError) -> Response:
    """A problem raised while placing an order, as the app's problem handler renders it."""
    return Response(
        orjson.dumps(problem.to_dict(PATH)),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=dict(problem.headers),
    )


def start_checkout(c: Any) -> Callable[[], None]:
    """Starter (``serving.app.STARTERS``): webhook delivery, a first recovery pass, the recovery
    loop and the outbox; returns their stopper. Nothing registers itself."""
    rt = c.checkout = build_runtime(c.db, c.settings, c.event_log)
    if rt.settings.payment_webhook_delivery != "off":
        rt.dispatcher.start()
    loop = recovery_loop(rt)
    worker = OutboxWorker(rt.db, rt.settings, hooks=rt.hooks)
    loop.start()  # its first pass is the start-up recovery
    worker.start()

    def stop() -> None:
        loop.stop()
        worker.stop()
        rt.dispatcher.stop()
        rt.close()

    return stop
