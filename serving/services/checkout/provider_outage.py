"""Refuse a new checkout up front while the payment provider's circuit is open.

Checking before the saga's first transaction means that during an outage a checkout costs one
read at most: no order, no reservation, no claimed Idempotency-Key. The shopper's client gets
503 + ``Retry-After`` and can retry *with the same key* once the provider is back, which then
places the order and charges once.

A key that already exists is let through to the saga, so a retried request whose order was
completed still gets its stored answer (and an in-flight duplicate its 409) during an outage.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from serving.core.errors import ProblemError
from serving.db.engine import Database
from serving.db.tables.idempotency import IdempotencyKey
from serving.services.checkout.payments.circuit_breaker import retry_after_header


class PaymentsUnavailable(ProblemError):
    """503: the payment provider is failing; nothing was written, retry later with the same key."""

    def __init__(self, retry_after: float) -> None:
        header = retry_after_header(retry_after)
        super().__init__(
            503,
            "Payments unavailable",
            "The payment provider is not answering; no order was placed and nothing was "
            f"charged. Retry in {header} s with the same Idempotency-Key.",
            type_="https://storeloop.dev/problems/payments-unavailable",
            headers={"Retry-After": header},
            retry_after=int(header),
        )


def _key_exists(db: Database, user_id: int, key: str) -> bool:
    with db.session() as s:
        return (
            s.scalar(
                select(IdempotencyKey.key).where(
                    IdempotencyKey.user_id == user_id, IdempotencyKey.key == key
                )
            )
            is not None
        )


def refuse_new_checkout(db: Database, provider: Any, *, user_id: int, key: str) -> None:
    """Raise :class:`PaymentsUnavailable` when the provider's breaker refuses calls and this
    key has no history; otherwise return and let the saga run."""
    breaker = getattr(provider, "breaker", None)
    if breaker is None:
        return
    wait = breaker.refusing_for()
    if wait <= 0 or _key_exists(db, user_id, key):
        return
    raise PaymentsUnavailable(wait)
