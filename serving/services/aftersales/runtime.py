"""What the after-sales and membership passes need, built once per app: the database, the
checkout's payment provider, the provider's dispute desk, and the background pass.

Dispute events come through the checkout's webhook path: the provider's one dispatcher and
``POST /api/v1/payments/webhook`` hand a ``charge.dispute.*`` event to :func:`disputes.receive`
(``CheckoutRuntime.webhook_routes``, registered here), signed with the same per-install secret
and verified the same way as payment events.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from serving.core import clock
from serving.core.background import BackgroundLoop
from serving.services.checkout.runtime import CheckoutRuntime
from serving.services.checkout.service import build_runtime
from serving.services.checkout.service import runtime as checkout_runtime

from . import disputes
from .provider_disputes import DisputeDesk

log = logging.getLogger("storeloop.aftersales")

#: Seconds between passes of the background loop (marketplace, returns, renewals).
LOOP_SECONDS = 30.0


class AftersalesRuntime:
    def __init__(self, checkout_rt: CheckoutRuntime) -> None:
        self.checkout = checkout_rt
        self.db = checkout_rt.db
        self.provider = checkout_rt.provider
        self.secret = checkout_rt.settings.payment_webhook_secret
        self.dispatcher = checkout_rt.dispatcher
        checkout_rt.route_webhooks(disputes.is_dispute_event, self.receive)
        delivery = checkout_rt.settings.payment_webhook_delivery
        self.desk = DisputeDesk(self.db, None if delivery == "off" else self.dispatcher.submit)

    def receive(self, body: bytes, signature: str | None) -> dict[str, Any]:
        return disputes.receive(self, body, signature)

    def emit(self, event_type: str, **fields: Any) -> None:
        self.checkout.emit(event_type, **fields)


_lock = threading.Lock()


def aftersales_runtime(app: Any) -> AftersalesRuntime:
    """The app's after-sales runtime, built on first use over its checkout runtime."""
    c = app.state.components
    rt = checkout_runtime(app)
    with _lock:
        if c.aftersales is None or c.aftersales.checkout is not rt:
            c.aftersales = AftersalesRuntime(rt)
        return c.aftersales


def run_once(rt: AftersalesRuntime) -> dict[str, int]:
    """One pass of everything that finishes on its own: sellers' parcels and ledger, returns
    left ``received``, membership renewals. Each part is idempotent."""
    from serving.services.marketplace import fulfilment
    from serving.services.membership import subscriptions

    from . import returns

    with rt.db.write_gate(), rt.db.session(write=True) as s:
        report = fulfilment.settle_orders(s)
    report["returns_refunded"] = returns.finish_received(rt.db, rt.provider)
    facts = subscriptions.run_due(rt.db, rt.provider)
    for event_type, fields in facts.events:
        rt.emit(event_type, **fields)
    report["membership_events"] = len(facts.events)
    return report


def aftersales_loop(rt: AftersalesRuntime, interval: float = LOOP_SECONDS) -> BackgroundLoop:
    """:func:`run_once` every ``interval`` seconds, on the shop's clock."""

    def tick() -> None:
        # In simulation mode the shoppers' clock is weeks in the past: renewals, ledger
        # entries and parcels follow it (as recovery does), not the wall clock.
        simulated = rt.checkout.settings.simulation_mode
        token = clock.set_simulated_now(clock.simulated_high_water() if simulated else None)
        try:
            run_once(rt)
        finally:
            clock.reset_simulated_now(token)

    return BackgroundLoop("aftersales-loop", tick, interval, run_first=False)


def start_aftersales(c: Any):
    """Starter (after the checkout's): dispute routing and the background pass."""
    if c.checkout is None:
        c.checkout = build_runtime(c.db, c.settings, c.event_log)
    c.aftersales = AftersalesRuntime(c.checkout)
    loop = aftersales_loop(c.aftersales)
    loop.start()
    return loop.stop
