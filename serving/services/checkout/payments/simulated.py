"""An in-repo payment provider that behaves like Stripe's test mode.

Its state lives in the ``sim_*`` tables ("the provider's database"), written in the provider's
own short transactions, never inside one of the shop's. Test cards pick the outcome::

    4242424242424242  succeeds              4000000000000002  generic_decline
    4000000000009995  insufficient_funds    4000000000000069  expired_card
    4000000000000119  processing_error      4000000000000341  provider timeout (ours)

Tokenisation keeps brand, last four and the outcome only; the number, CVC and expiry are
dropped on the floor, so neither the provider tables nor any log can leak them.

Two knobs degrade the whole provider for outage drills (``latency_seconds``, ``down``); the
client gives up after ``timeout_seconds`` like an HTTP client's read timeout would, and a charge
that outlasts it is left ``processing`` on the provider's side, as a slow real charge would be.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from serving.core import ids
from serving.core.clock import utcnow
from serving.core.errors import Unprocessable
from serving.db.bulk import BulkInsert, run_all
from serving.db.engine import Database
from serving.db.tables.payments import SimPaymentIntent, SimPaymentMethod, SimRefund

from . import (
    ChargeRequest,
    Intent,
    MethodInfo,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
)

OUTCOMES = {
    "4242424242424242": "succeed",
    "4000000000000002": "generic_decline",
    "4000000000009995": "insufficient_funds",
    "4000000000000069": "expired_card",
    "4000000000000119": "processing_error",
    "4000000000000341": "timeout",
}

WebhookSink = Callable[[dict[str, Any]], None]
_NEW_INTENT = insert(SimPaymentIntent.__table__)
_NEW_INTENTS = BulkInsert(SimPaymentIntent.__table__)
_INTENTS = SimPaymentIntent.__table__
_INTENTS_BY_ID = select(
    _INTENTS.c.id,
    _INTENTS.c.status,
    _INTENTS.c.amount_minor,
    _INTENTS.c.amount_refunded,
    _INTENTS.c.currency,
    _INTENTS.c.decline_code,
    _INTENTS.c.idempotency_key,
    _INTENTS.c.meta,
).where(_INTENTS.c.id.in_(bindparam("b_ids", expanding=True)))


def luhn_ok(number: str) -> bool:
    digits = [int(c) for c in number]
    odd = digits[-1::-2]
    even = [sum(divmod(2 * d, 10)) for d in digits[-2::-2]]
    return (sum(odd) + sum(even)) % 10 == 0


def brand_of(number: str) -> str:
    if number.startswith("4"):
        return "visa"
    if (
        number[:2] in {"51", "52", "53", "54", "55"}
        or number[:4].isdigit()
        and (2221 <= int(number[:4]) <= 2720)
    ):
        return "mastercard"
    if number[:2] in {"34", "37"}:
        return "amex"
    return "unknown"


def _intent(row: Any) -> Intent:
    return Intent(
        id=row.id,
        status=row.status,
        amount_minor=row.amount_minor,
        amount_refunded=row.amount_refunded,
        currency=row.currency,
        decline_code=row.decline_code,
        idempotency_key=row.idempotency_key,
        metadata=dict(row.meta or {}),
    )


class SimulatedProvider:
    """Stripe-like semantics over the provider's own tables."""

    name = "simulated"

    #: Tokens are immutable once made, so their brand, last4 and outcome are cached in-process.
    _CACHE_MAX = 100_000

    def __init__(
        self,
        db: Database,
        *,
        webhook_sink: WebhookSink | None = None,
        timeout_seconds: float = 2.0,
    ) -> None:
        self._db = db
        self._sink = webhook_sink
        self._methods: dict[str, tuple[str, str, str]] = {}
        self.timeout_seconds = timeout_seconds
        #: Outage knobs (tests and drills): every API call takes this long / fails unreachable.
        self.latency_seconds = 0.0
        self.down = False

    def _network(self) -> bool:
        """The round trip of one API call; True when the client's timeout runs out first.

        An unreachable provider fails at once (connection refused); a slow one costs the
        latency, or the timeout when that is shorter.
        """
        if self.down:
            raise ProviderUnavailable("simulated provider unreachable")
        latency = self.latency_seconds
        if latency <= 0:
            return False
        time.sleep(min(latency, self.timeout_seconds))
        return latency > self.timeout_seconds

    def _round_trip(self) -> None:
        if self._network():
            raise ProviderTimeout(f"provider did not answer within {self.timeout_seconds} s")

    def _remember(self, payment_method: str, brand: str, last4: str, outcome: str) -> None:
        if len(self._methods) >= self._CACHE_MAX:
            self._methods.clear()
        self._methods[payment_method] = (brand, last4, outcome)

    def _lookup(self, payment_method: str) -> tuple[str, str, str] | None:
        known = self._methods.get(payment_method)
        if known is not None:
            return known
        with self._db.session() as s:
            row = s.execute(
                select(
                    SimPaymentMethod.brand, SimPaymentMethod.last4, SimPaymentMethod.outcome
                ).where(SimPaymentMethod.id == payment_method)
            ).first()
        if row is None:
            return None
        self._remember(payment_method, row.brand, row.last4, row.outcome)
        return (row.brand, row.last4, row.outcome)

    # ---------------------------------------------------------------- tokenisation

    def tokenize(self, *, card_number: str, exp_month: int, exp_year: int, cvc: str) -> MethodInfo:
        number = card_number.replace(" ", "").replace("-", "")
        if not (number.isdigit() and 12 <= len(number) <= 19 and luhn_ok(number)):
            raise Unprocessable("The card number is not valid", code="invalid_number")
        if not (cvc.isdigit() and len(cvc) in (3, 4)):
            raise Unprocessable("The CVC is not valid", code="invalid_cvc")
        if not 1 <= exp_month <= 12:
            raise Unprocessable("The expiry month is not valid", code="invalid_expiry_month")
        now = utcnow()
        outcome = OUTCOMES.get(number, "succeed")
        if (exp_year, exp_month) < (now.year, now.month):
            outcome = "expired_card"
        info = MethodInfo(
            id="pm_" + secrets.token_hex(12), brand=brand_of(number), last4=number[-4:]
        )
        with self._db.write_gate(), self._db.transaction() as s:
            s.execute(
                insert(SimPaymentMethod).values(
                    id=info.id, brand=info.brand, last4=info.last4, outcome=outcome, created_at=now
                )
            )
        self._remember(info.id, info.brand, info.last4, outcome)
        return info

    def method(self, payment_method: str) -> MethodInfo | None:
        known = self._lookup(payment_method)
        return None if known is None else MethodInfo(payment_method, known[0], known[1])

    # ---------------------------------------------------------------- intents

    def charge(
        self,
        *,
        amount_minor: int,
        currency: str,
        payment_method: str,
        idempotency_key: str,
        metadata: dict[str, Any],
    ) -> Intent:
        timed_out = self._network()
        now = utcnow()
        known = self._lookup(payment_method)
        if known is None:
            raise ProviderError(f"No such payment method {payment_method}")
        # Too slow: the provider got the request and is still working on it when we give up.
        outcome = "timeout" if timed_out else known[2]
        if outcome == "succeed":
            status, code = "succeeded", None
        elif outcome == "timeout":
            status, code = "processing", None
        else:
            status, code = "requires_payment_method", outcome
        intent = Intent(
            id="pi_" + ids.token_hex(12),
            status=status,
            amount_minor=amount_minor,
            amount_refunded=0,
            currency=currency,
            decline_code=code,
            idempotency_key=idempotency_key,
            metadata=dict(metadata),
        )
        try:
            with self._db.write_gate(), self._db.transaction() as s:
                s.connection().execute(
                    _NEW_INTENT,
                    {
                        "id": intent.id,
                        "idempotency_key": idempotency_key,
                        "amount_minor": amount_minor,
                        "currency": currency,
                        "status": status,
                        "payment_method": payment_method,
                        "decline_code": code,
                        "amount_refunded": 0,
                        "meta": intent.metadata,
                        "created_at": now,
                        "updated_at": now,
                    },
                )
        except IntegrityError:
            # Same idempotency key: Stripe answers with the original intent, never a new charge.
            existing = self.find_intent(idempotency_key)
            if existing is None:  # pragma: no cover - the conflicting row is committed
                raise
            if existing.amount_minor != amount_minor:
                raise ProviderError("Idempotency key reused with different parameters") from None
            if timed_out:
                raise ProviderTimeout(f"provider did not answer for {idempotency_key}") from None
            return existing
        if status == "succeeded":
            self._send("payment_intent.succeeded", intent)
        elif status == "requires_payment_method":
            self._send("payment_intent.payment_failed", intent)
        if outcome == "timeout":
            # The intent exists and is stuck in processing; the caller never hears back.
            raise ProviderTimeout(f"provider did not answer for {idempotency_key}")
        return intent

    def batchable(self, payment_method: str) -> bool:
        """True when a charge on this method would simply succeed with no network trouble:
        the only case :meth:`charge_many` takes (a decline or a timeout goes one by one)."""
        if self.down or self.latency_seconds > 0:
            return False
        known = self._methods.get(payment_method)
        return known is not None and known[2] == "succeed"

    def charge_many(self, requests: list[ChargeRequest]) -> list[Intent]:
        """Several succeeding charges in one of the provider's transactions (the batched
        checkout). All or none: a reused idempotency key raises ``IntegrityError`` and nothing
        is stored, so the caller can fall back on :meth:`charge` one by one, which answers a
        reused key with the original intent as Stripe does."""
        if self._network():
            raise ProviderTimeout(f"provider did not answer within {self.timeout_seconds} s")
        now = utcnow()
        intents = []
        rows = []
        for request in requests:
            if not self.batchable(request.payment_method):
                raise ProviderError(f"{request.payment_method} cannot be charged in a batch")
            intent = Intent(
                id="pi_" + ids.token_hex(12),
                status="succeeded",
                amount_minor=request.amount_minor,
                amount_refunded=0,
                currency=request.currency,
                decline_code=None,
                idempotency_key=request.idempotency_key,
                metadata=dict(request.metadata),
            )
            intents.append(intent)
            rows.append(
                {
                    "id": intent.id,
                    "idempotency_key": intent.idempotency_key,
                    "amount_minor": intent.amount_minor,
                    "currency": intent.currency,
                    "status": "succeeded",
                    "payment_method": request.payment_method,
                    "decline_code": None,
                    "amount_refunded": 0,
                    "meta": intent.metadata,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        bound = _NEW_INTENTS.bind(self._db.engine.dialect, rows)  # before the write lock
        with self._db.write_gate(), self._db.writer.begin() as conn:
            run_all(conn, [bound], commit=True)  # PostgreSQL: BEGIN, INSERT, COMMIT at once
        for intent in intents:
            self._send("payment_intent.succeeded", intent)
        return intents

    def _get(self, intent_id: str) -> Intent:
        with self._db.session() as s:
            row = s.execute(
                select(SimPaymentIntent).where(SimPaymentIntent.id == intent_id)
            ).scalar()
        if row is None:
            raise ProviderError(f"No such intent {intent_id}")
        return _intent(row)

    def find_intent(self, idempotency_key: str) -> Intent | None:
        self._round_trip()
        with self._db.session() as s:
            row = s.execute(
                select(SimPaymentIntent).where(SimPaymentIntent.idempotency_key == idempotency_key)
            ).scalar()
        return None if row is None else _intent(row)

    def retrieve_many(self, intent_ids: list[str]) -> dict[str, Intent]:
        """Several intents by id in one call (Stripe: a retrieve each; one query here)."""
        self._round_trip()
        if not intent_ids:
            return {}
        with self._db.session() as s:  # plain rows: a webhook batch reads up to 256 at once
            rows = s.execute(_INTENTS_BY_ID, {"b_ids": sorted(set(intent_ids))})
            return {row.id: _intent(row) for row in rows}

    def cancel(self, intent_id: str) -> Intent:
        """Void an intent that has not captured money; a succeeded one needs a refund."""
        self._round_trip()
        with self._db.write_gate(), self._db.transaction() as s:
            result = s.execute(
                update(SimPaymentIntent)
                .where(
                    SimPaymentIntent.id == intent_id,
                    SimPaymentIntent.status.in_(("requires_payment_method", "processing")),
                )
                .values(status="canceled", updated_at=utcnow())
            )
        intent = self._get(intent_id)
        if result.rowcount == 1:
            self._send("payment_intent.canceled", intent)
        elif intent.status != "canceled":
            raise ProviderError(f"Intent {intent_id} is {intent.status} and cannot be canceled")
        return intent

    def refund(self, intent_id: str, *, amount_minor: int | None, idempotency_key: str) -> Intent:
        """Refund all or part of a succeeded intent; the key makes a retried refund a no-op."""
        self._round_trip()
        intent = self._get(intent_id)
        amount = (
            intent.amount_minor - intent.amount_refunded if amount_minor is None else amount_minor
        )
        try:
            with self._db.write_gate(), self._db.transaction() as s:
                s.execute(
                    insert(SimRefund).values(
                        id="re_" + ids.token_hex(12),
                        intent_id=intent_id,
                        idempotency_key=idempotency_key,
                        amount_minor=amount,
                        created_at=utcnow(),
                    )
                )
                result = s.execute(
                    update(SimPaymentIntent)
                    .where(
                        SimPaymentIntent.id == intent_id,
                        SimPaymentIntent.status == "succeeded",
                        SimPaymentIntent.amount_refunded + amount <= SimPaymentIntent.amount_minor,
                    )
                    .values(
                        amount_refunded=SimPaymentIntent.amount_refunded + amount,
                        updated_at=utcnow(),
                    )
                )
                if amount <= 0 or result.rowcount != 1:
                    raise ProviderError(f"Cannot refund {amount} of intent {intent_id}")
        except IntegrityError:
            return self._get(intent_id)  # this refund was already made
        intent = self._get(intent_id)
        self._send("charge.refunded", intent)
        return intent

    # ---------------------------------------------------------------- webhooks

    def _send(self, event_type: str, intent: Intent) -> None:
        if self._sink is None:
            return
        self._sink(
            {
                "id": "evt_" + ids.token_hex(12),
                "type": event_type,
                "created": int(utcnow().timestamp()),
                "data": {
                    "object": {
                        "id": intent.id,
                        "object": "payment_intent",
                        "status": intent.status,
                        "amount": intent.amount_minor,
                        "amount_refunded": intent.amount_refunded,
                        "currency": intent.currency,
                        "decline_code": intent.decline_code,
                        "metadata": intent.metadata,
                    }
                },
            }
        )
