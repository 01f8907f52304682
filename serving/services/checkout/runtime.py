"""What the saga needs beyond a session: database, payment provider, webhook dispatcher,
settings, the event log and the test hooks.

It knows nothing of the steps that use it: the webhook receivers are handed in by whoever
builds it (:func:`serving.services.checkout.service.build_runtime`), and the batcher is
attached there too, so this module imports nothing else of the checkout but its payments.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from serving.core.config import Settings
from serving.db.engine import Database
from serving.services.checkout.payments.guarded import build_provider
from serving.services.checkout.payments.webhooks import WebhookDispatcher

log = logging.getLogger("storeloop.checkout")

#: ``receive(rt, body=..., signature=...)``: apply one webhook (services/checkout/webhooks.py).
Receiver = Callable[..., dict[str, Any]]
#: ``receive_many(rt, deliveries)``: apply a batch of in-process webhooks.
BatchReceiver = Callable[["CheckoutRuntime", list[tuple[bytes, str]]], None]


class SimulatedCrash(RuntimeError):
    """Raised by a test hook to stop the saga exactly where a process crash would."""


class NoEvents:
    """An event sink that drops everything (tests and tools that drive the saga by hand)."""

    def emit(self, event_type: str, **fields: Any) -> None:
        return None


def read_test_hooks(settings: Settings) -> dict[str, str]:
    """``name=value`` pairs from ``settings.test_hooks`` or ``STORELOOP_TEST_HOOKS``; only in
    the test environment or simulation mode, never in production."""
    allowed = settings.environment == "test" or settings.simulation_mode
    raw = settings.test_hooks or (os.environ.get("STORELOOP_TEST_HOOKS", "") if allowed else "")
    hooks: dict[str, str] = {}
    if allowed:
        for item in filter(None, (p.strip() for p in raw.split(","))):
            name, _, value = item.partition("=")
            hooks[name] = value
    return hooks


class CheckoutRuntime:
    """The checkout's long-lived parts of one app (one per worker process)."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        event_log: Any = None,
        *,
        receive_webhook: Receiver | None = None,
        receive_webhooks: BatchReceiver | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.event_log = event_log
        self._receive_webhook = receive_webhook
        self._receive_webhooks = receive_webhooks
        delivery = settings.payment_webhook_delivery
        inprocess = delivery == "inprocess" and receive_webhook is not None
        self.dispatcher = WebhookDispatcher(
            settings.payment_webhook_secret,
            receiver=self.receive_webhook if inprocess else None,
            url=settings.payment_webhook_url if delivery == "http" else None,
            batch_receiver=self.receive_webhooks if receive_webhooks is not None else None,
            delay=settings.payment_webhook_delay_seconds if delivery == "inprocess" else 0.0,
        )
        self.hooks = read_test_hooks(settings)
        #: (matches(body), receive(body, signature)) of provider events that belong to another
        #: domain (disputes: serving/services/aftersales): same endpoint, signature and
        #: dispatcher, their own handler (:meth:`route_webhooks`).
        self.webhook_routes: list[tuple[Callable[[bytes], bool], Receiver]] = []
        #: The worker's checkout batcher, made on first use (service.batcher); None until then.
        self.batcher: Any = None
        self.batcher_lock = threading.Lock()
        #: The worker's limit on per-order checkouts at once (made inside the event loop).
        self.slots: Any = None
        self.provider = build_provider(
            db,
            settings,
            webhook_sink=None if delivery == "off" else self.dispatcher.submit,
            hooks=self.hooks,
        )

    def close(self) -> None:
        """Stop the batcher (after the server stopped taking requests)."""
        with self.batcher_lock:
            batcher, self.batcher = self.batcher, None
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

    def route_webhooks(self, matches: Callable[[bytes], bool], receive: Receiver) -> None:
        """Hand provider events for which ``matches(body)`` holds to ``receive`` (once)."""
        if all(existing is not matches for existing, _ in self.webhook_routes):
            self.webhook_routes.append((matches, receive))

    def routed(self, body: bytes) -> Receiver | None:
        """The receiver of another domain for this event, if one claims it."""
        for matches, receive in self.webhook_routes:
            if matches(body):
                return receive
        return None

    def receive_webhook(self, body: bytes, signature: str | None) -> dict[str, Any]:
        assert self._receive_webhook is not None
        return self._receive_webhook(self, body=body, signature=signature)

    def receive_webhooks(self, deliveries: list[tuple[bytes, str]]) -> None:
        assert self._receive_webhooks is not None
        self._receive_webhooks(self, deliveries)
