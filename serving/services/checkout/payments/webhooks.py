"""Webhook signatures (Stripe's scheme) and the simulated provider's delivery thread.

``Storeloop-Signature: t=<unix>,v1=<hex hmac-sha256(secret, f"{t}.{body}")>``: the timestamp is
inside the MAC, so an attacker cannot replay an old body with a fresh time, and events older
than the tolerance are refused outright. Replays inside the window are caught by event id.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import orjson

from serving.core import clock
from serving.core.clock import utcnow
from serving.core.errors import BadRequest

log = logging.getLogger("storeloop.webhooks")

TOLERANCE_SECONDS = 300
HEADER = "Storeloop-Signature"


def sign(secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, body: bytes, header: str | None, *, now: float | None = None) -> None:
    """Raise a 400 problem unless ``header`` signs ``body`` within the tolerance."""
    if not header:
        raise BadRequest("Missing webhook signature")
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        parts.setdefault(name, []).append(value)
    try:
        timestamp = int(parts["t"][0])
    except (KeyError, ValueError):
        raise BadRequest("Malformed webhook signature") from None
    now = utcnow().timestamp() if now is None else now
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        raise BadRequest("Webhook signature timestamp is outside the tolerance")
    expected = sign(secret, body, timestamp).partition(",v1=")[2]
    if not any(hmac.compare_digest(expected, v) for v in parts.get("v1", [])):
        raise BadRequest("Webhook signature does not match")


Receiver = Callable[[bytes, str], Any]
_NOTHING = object()  # the queue had nothing new before the next delivery was due
BatchReceiver = Callable[[list[tuple[bytes, str]]], Any]


class WebhookDispatcher:
    """Signs provider events and delivers them off the request path, like a real provider.

    ``receiver`` is the same function the HTTP endpoint calls (in-process delivery) or None to
    POST to ``url``. Delivery is at least once with a few retries; the receiver dedupes.
    In-process, whatever has queued up meanwhile is handed to ``batch_receiver`` at once (one
    database transaction for the lot instead of one each); if that fails, each event is
    delivered on its own as before.

    Events go out ``delay`` seconds after they happened, as a real provider's arrive a moment
    after its API answered. Besides realism this matters for cost: delivered at once, the
    ``succeeded`` event raced the request that just charged the card, and whichever lost did
    the order's bookkeeping a second time through the slow general path; a second later the
    order is settled, the event is a cheap confirmation, and many share one transaction.
    ``drain`` and ``stop`` deliver everything still waiting straight away.
    """

    BATCH = 256

    def __init__(
        self,
        secret: str,
        *,
        receiver: Receiver | None = None,
        url: str | None = None,
        batch_receiver: BatchReceiver | None = None,
        delay: float = 0.0,
    ) -> None:
        self._secret = secret
        self._receiver = receiver
        self._batch_receiver = batch_receiver if receiver is not None else None
        self._url = url
        self.delay = max(0.0, delay)
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread: threading.Thread | None = None

    def submit(self, event: dict[str, Any]) -> None:
        if self._thread is None:
            return  # not started (e.g. delivery switched off): the provider keeps its state
        # The event keeps the clock it happened on: a simulated order's webhook is handled in
        # simulated time, not stamped with today's date a month after the order.
        self._queue.put((time.monotonic() + self.delay, event, clock.simulated_override()))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="webhook-dispatch", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until every queued event was handed over (tests and shutdown)."""
        done = threading.Event()
        self._queue.put({"__barrier__": done})
        done.wait(timeout)

    def deliver_now(self, event: dict[str, Any]) -> None:
        body = orjson.dumps(event)
        header = sign(self._secret, body, int(utcnow().timestamp()))
        if self._receiver is not None:
            self._receiver(body, header)
        elif self._url:
            import httpx

            response = httpx.post(
                self._url,
                content=body,
                headers={HEADER: header, "content-type": "application/json"},
                timeout=10,
            )
            response.raise_for_status()

    def _run(self) -> None:
        # (due, event, simulated time or None), due ascending
        waiting: deque[tuple[float, dict[str, Any], Any]] = deque()
        while True:
            timeout = None if not waiting else max(0.0, waiting[0][0] - time.monotonic())
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                item = _NOTHING
            if item is None:  # stop: hand over everything first
                self._deliver_timed([(event, sim) for _, event, sim in waiting])
                return
            if isinstance(item, dict):  # a barrier from drain()
                self._deliver_timed([(event, sim) for _, event, sim in waiting])
                waiting.clear()
                item["__barrier__"].set()
                continue
            if item is not _NOTHING:
                waiting.append(item)
                if len(waiting) < self.BATCH:
                    continue  # take whatever else is queued before delivering
            # Once the oldest is due, the ones due soon after go with it (up to half the delay
            # early), so events share a transaction instead of trickling in one at a time.
            horizon = time.monotonic() + self.delay / 2
            batch = []
            while waiting and waiting[0][0] <= horizon and len(batch) < self.BATCH:
                _, event, sim = waiting.popleft()
                batch.append((event, sim))
            self._deliver_timed(batch)

    def _deliver_timed(self, events: list[tuple[dict[str, Any], Any]]) -> None:
        """Deliver events grouped by the clock they happened on (one group in real time)."""
        groups: dict[Any, list[dict[str, Any]]] = {}
        for event, sim in events:
            groups.setdefault(sim, []).append(event)
        for sim, group in groups.items():
            token = clock.set_simulated_now(sim)
            try:
                self._deliver_all(group)
            finally:
                clock.reset_simulated_now(token)

    def _deliver_all(self, events: list[dict[str, Any]]) -> None:
        if not events:
            return
        if self._batch_receiver is not None:
            stamp = int(utcnow().timestamp())
            signed = []
            for event in events:
                body = orjson.dumps(event)
                signed.append((body, sign(self._secret, body, stamp)))
            try:
                self._batch_receiver(signed)
                return
            except Exception:
                log.warning("batched webhook delivery failed; delivering one by one", exc_info=True)
        for event in events:
            self._deliver_one(event)

    def _deliver_one(self, event: dict[str, Any]) -> None:
        for attempt in range(3):
            try:
                self.deliver_now(event)
                return
            except Exception:  # the receiver is reconciled by recovery anyway
                log.warning(
                    "webhook %s delivery attempt %d failed",
                    event["id"],
                    attempt + 1,
                    exc_info=True,
                )
