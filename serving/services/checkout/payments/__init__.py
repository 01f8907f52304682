"""The payment-provider interface the checkout saga talks to, and the provider registry.

The saga depends on :class:`PaymentProvider` only, so a real provider (Stripe, Adyen) can
replace the simulated one without touching orders. Every money-moving call takes a
provider-side idempotency key: the saga derives it from the order id, so a retried checkout,
a recovery pass and the original request all name the same charge and can never make two.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from serving.core.errors import ProblemError

DECLINE_CODES = ("generic_decline", "insufficient_funds", "expired_card", "processing_error")


@dataclass(frozen=True)
class Intent:
    """A payment intent as the provider reports it (Stripe's states)."""

    id: str
    status: str  # requires_payment_method | processing | succeeded | canceled
    amount_minor: int
    amount_refunded: int
    currency: str
    decline_code: str | None
    idempotency_key: str
    metadata: dict[str, Any]

    @property
    def captured(self) -> bool:
        return self.status == "succeeded"


@dataclass(frozen=True)
class ChargeRequest:
    """One charge of a batch (:meth:`SimulatedProvider.charge_many`)."""

    amount_minor: int
    currency: str
    payment_method: str
    idempotency_key: str
    metadata: dict[str, Any]


@dataclass(frozen=True)
class MethodInfo:
    id: str
    brand: str
    last4: str


class ProviderTimeout(Exception):
    """The provider did not answer in time: the charge may or may not exist."""


class ProviderError(Exception):
    """The provider refused the call itself (not a decline)."""


class ProviderUnavailable(ProviderError):
    """The provider could not be reached or answered 5xx: the call may or may not have landed.

    Unlike a plain :class:`ProviderError` (the provider answered and said no) this is an outage,
    so the circuit breaker counts it and the saga resolves the charge by its key later.
    """


class PaymentProvider(Protocol):
    name: str

    def tokenize(self, *, card_number: str, exp_month: int, exp_year: int, cvc: str) -> MethodInfo:
        """Turn card details into a reusable token; the details go nowhere else."""

    def method(self, payment_method: str) -> MethodInfo | None: ...

    def charge(
        self,
        *,
        amount_minor: int,
        currency: str,
        payment_method: str,
        idempotency_key: str,
        metadata: dict[str, Any],
    ) -> Intent:
        """Create and confirm an intent; the same key returns the same intent."""

    def find_intent(self, idempotency_key: str) -> Intent | None: ...

    def retrieve_many(self, intent_ids: list[str]) -> dict[str, Intent]:
        """The intents with these ids as the provider has them now (unknown ids left out).

        What a webhook handler believes: an event is only a hint to read these back."""

    def cancel(self, intent_id: str) -> Intent: ...

    def refund(
        self, intent_id: str, *, amount_minor: int | None, idempotency_key: str
    ) -> Intent: ...


class PaymentDeclined(ProblemError):
    def __init__(self, decline_code: str, order_id: str, detail: str | None = None, **ext: Any):
        super().__init__(
            402,
            "Payment declined",
            detail or f"The card was declined ({decline_code}); no money was taken",
            type_="https://storeloop.dev/problems/payment-declined",
            decline_code=decline_code,
            order_id=order_id,
            **ext,
        )
