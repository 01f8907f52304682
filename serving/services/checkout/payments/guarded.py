"""The provider the checkout talks to: the configured provider behind a circuit breaker.

Every call that reaches the provider's API (charge, look-up, cancel, refund) goes through the
breaker; outages (:class:`ProviderTimeout`, :class:`ProviderUnavailable`) count against it, an
answer of any kind (including a decline or a refused call) counts for it. Tokenisation and the
cached payment-method look-up are not guarded: in a real integration the browser tokenises
with the provider directly, and the look-up only reads what tokenisation stored.

The timeout itself belongs to the provider's client (as an HTTP client's read timeout would):
:class:`SimulatedProvider` is built with ``payment_provider_timeout_seconds`` and gives up on a
call that takes longer, leaving whatever the provider did on its side to be resolved by key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from serving.core.config import Settings
from serving.db.engine import Database

from . import (
    ChargeRequest,
    Intent,
    MethodInfo,
    PaymentProvider,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
)
from .circuit_breaker import CircuitBreaker
from .simulated import SimulatedProvider, WebhookSink

T = TypeVar("T")


class GuardedProvider:
    """A :class:`PaymentProvider` whose API calls pass through ``breaker``."""

    def __init__(self, inner: PaymentProvider, breaker: CircuitBreaker) -> None:
        self.inner = inner
        self.breaker = breaker
        self.name = inner.name

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        self.breaker.acquire()
        try:
            result = fn(*args, **kwargs)
        except (ProviderTimeout, ProviderUnavailable):
            self.breaker.failure()
            raise
        except ProviderError:
            self.breaker.success()  # the provider answered; it just said no
            raise
        except BaseException:
            self.breaker.release()
            raise
        self.breaker.success()
        return result

    def tokenize(self, *, card_number: str, exp_month: int, exp_year: int, cvc: str) -> MethodInfo:
        return self.inner.tokenize(
            card_number=card_number, exp_month=exp_month, exp_year=exp_year, cvc=cvc
        )

    def method(self, payment_method: str) -> MethodInfo | None:
        return self.inner.method(payment_method)

    def charge(
        self,
        *,
        amount_minor: int,
        currency: str,
        payment_method: str,
        idempotency_key: str,
        metadata: dict[str, Any],
    ) -> Intent:
        return self._call(
            self.inner.charge,
            amount_minor=amount_minor,
            currency=currency,
            payment_method=payment_method,
            idempotency_key=idempotency_key,
            metadata=metadata,
        )

    def batchable(self, payment_method: str) -> bool:
        """A batch is only tried while the breaker lets calls through freely."""
        inner = getattr(self.inner, "batchable", None)
        return inner is not None and self.breaker.refusing_for() <= 0 and inner(payment_method)

    def charge_many(self, requests: list[ChargeRequest]) -> list[Intent]:
        return self._call(self.inner.charge_many, requests)

    def find_intent(self, idempotency_key: str) -> Intent | None:
        return self._call(self.inner.find_intent, idempotency_key)

    def retrieve_many(self, intent_ids: list[str]) -> dict[str, Intent]:
        return self._call(self.inner.retrieve_many, intent_ids)

    def cancel(self, intent_id: str) -> Intent:
        return self._call(self.inner.cancel, intent_id)

    def refund(self, intent_id: str, *, amount_minor: int | None, idempotency_key: str) -> Intent:
        return self._call(
            self.inner.refund, intent_id, amount_minor=amount_minor, idempotency_key=idempotency_key
        )


def build_provider(
    db: Database,
    settings: Settings,
    *,
    webhook_sink: WebhookSink | None,
    hooks: dict[str, str] | None = None,
) -> GuardedProvider:
    """The simulated provider with the configured timeout, behind a fresh breaker.

    Test hooks (tests and simulation mode only) start it degraded, for drills against a server
    in a subprocess: ``provider_latency_ms=N`` makes every API call take N ms,
    ``provider_down`` makes every API call fail as unreachable.
    """
    simulated = SimulatedProvider(
        db, webhook_sink=webhook_sink, timeout_seconds=settings.payment_provider_timeout_seconds
    )
    hooks = hooks or {}
    if hooks.get("provider_latency_ms"):
        simulated.latency_seconds = int(hooks["provider_latency_ms"]) / 1000
    simulated.down = "provider_down" in hooks
    breaker = CircuitBreaker(
        failure_threshold=settings.payment_breaker_failures,
        reset_seconds=settings.payment_breaker_reset_seconds,
    )
    return GuardedProvider(simulated, breaker)
