"""The simulated provider's disputes (chargebacks), like Stripe's ``Dispute`` objects.

A card holder's bank opens a dispute on a captured intent: the disputed amount is withdrawn
from the merchant at once ("frozen" until the bank decides). The merchant may answer once with
evidence (``needs_response`` → ``under_review``); the bank then decides ``won`` (the money
comes back) or ``lost`` (it is gone). Each change is announced by a signed webhook
(``charge.dispute.created|updated|closed``) that carries only what the shop must then read
back with :meth:`DisputeDesk.retrieve_many`.

The bank's decision in simulation: :meth:`DisputeDesk.decide` wins a dispute that was answered
with evidence and loses one that was not (a test or a drill may force either outcome).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from serving.core import ids
from serving.core.clock import utcnow
from serving.db.engine import Database
from serving.db.tables.aftersales import SimDispute
from serving.db.tables.payments import SimPaymentIntent
from serving.services.checkout.payments import ProviderError

REASONS = ("fraudulent", "product_not_received", "product_unacceptable", "duplicate", "general")


@dataclass(frozen=True)
class ProviderDispute:
    id: str
    intent_id: str
    amount_minor: int
    currency: str
    reason: str
    status: str  # needs_response | under_review | won | lost
    evidence: str


def _dispute(row: Any) -> ProviderDispute:
    return ProviderDispute(
        row.id, row.intent_id, row.amount_minor, row.currency, row.reason, row.status, row.evidence
    )


class DisputeDesk:
    """The provider's dispute API over its own table; ``sink`` receives the webhook events."""

    def __init__(self, db: Database, sink: Callable[[dict[str, Any]], None] | None) -> None:
        self._db = db
        self._sink = sink

    def open(
        self, intent_id: str, *, amount_minor: int | None = None, reason: str = "fraudulent"
    ) -> ProviderDispute:
        """The bank disputes a captured intent (the whole charge unless ``amount_minor``)."""
        if reason not in REASONS:
            raise ProviderError(f"Unknown dispute reason {reason}")
        now = utcnow()
        with self._db.write_gate(), self._db.transaction() as s:
            intent = s.execute(
                select(
                    SimPaymentIntent.status,
                    SimPaymentIntent.amount_minor,
                    SimPaymentIntent.amount_refunded,
                    SimPaymentIntent.currency,
                ).where(SimPaymentIntent.id == intent_id)
            ).first()
            if intent is None or intent.status != "succeeded":
                raise ProviderError(f"Intent {intent_id} has no captured charge to dispute")
            left = intent.amount_minor - intent.amount_refunded
            amount = left if amount_minor is None else amount_minor
            if not 0 < amount <= left:
                raise ProviderError(f"Cannot dispute {amount} of intent {intent_id}")
            dispute = ProviderDispute(
                "dp_" + ids.token_hex(12),
                intent_id,
                amount,
                intent.currency,
                reason,
                "needs_response",
                "",
            )
            s.add(
                SimDispute(
                    id=dispute.id,
                    intent_id=intent_id,
                    amount_minor=amount,
                    currency=intent.currency,
                    reason=reason,
                    status="needs_response",
                    evidence="",
                    created_at=now,
                    updated_at=now,
                )
            )
        self._send("charge.dispute.created", dispute)
        return dispute

    def submit_evidence(self, dispute_id: str, evidence: str) -> ProviderDispute:
        with self._db.write_gate(), self._db.transaction() as s:
            moved = s.execute(
                update(SimDispute)
                .where(SimDispute.id == dispute_id, SimDispute.status == "needs_response")
                .values(status="under_review", evidence=evidence, updated_at=utcnow())
            ).rowcount
        dispute = self.retrieve(dispute_id)
        if dispute is None:
            raise ProviderError(f"No such dispute {dispute_id}")
        if not moved:
            raise ProviderError(f"Dispute {dispute_id} is {dispute.status}; evidence is closed")
        self._send("charge.dispute.updated", dispute)
        return dispute

    def decide(self, dispute_id: str, *, won: bool | None = None) -> ProviderDispute:
        """The bank's decision: ``won`` if evidence was given, unless a drill forces it."""
        current = self.retrieve(dispute_id)
        if current is None:
            raise ProviderError(f"No such dispute {dispute_id}")
        if current.status in ("won", "lost"):
            return current
        outcome = won if won is not None else bool(current.evidence)
        with self._db.write_gate(), self._db.transaction() as s:
            s.execute(
                update(SimDispute)
                .where(SimDispute.id == dispute_id, SimDispute.status == current.status)
                .values(status="won" if outcome else "lost", updated_at=utcnow())
            )
        dispute = self.retrieve(dispute_id)
        assert dispute is not None
        self._send("charge.dispute.closed", dispute)
        return dispute

    def retrieve(self, dispute_id: str) -> ProviderDispute | None:
        return self.retrieve_many([dispute_id]).get(dispute_id)

    def retrieve_many(self, dispute_ids: list[str]) -> dict[str, ProviderDispute]:
        if not dispute_ids:
            return {}
        with self._db.session() as s:
            rows = s.scalars(select(SimDispute).where(SimDispute.id.in_(sorted(set(dispute_ids)))))
            return {row.id: _dispute(row) for row in rows}

    def _send(self, event_type: str, dispute: ProviderDispute) -> None:
        if self._sink is None:
            return
        self._sink(
            {
                "id": "evt_" + ids.token_hex(12),
                "type": event_type,
                "created": int(utcnow().timestamp()),
                "data": {
                    "object": {
                        "id": dispute.id,
                        "object": "dispute",
                        "payment_intent": dispute.intent_id,
                        "status": dispute.status,
                        "amount": dispute.amount_minor,
                        "currency": dispute.currency,
                        "reason": dispute.reason,
                    }
                },
            }
        )
