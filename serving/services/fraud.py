"""Basic fraud signals on orders: velocity and amount outliers put a paid order on hold.

The rules are a pure function, :func:`assess`, of the order's facts and a small summary of
history, so they are tested without a database; this module reads nothing and writes nothing.
The checkout applies them (``serving/services/checkout/holds.py``, at the start of
``steps.fulfil``, which every path to ``fulfilled`` goes through: the request, the provider's
webhook and recovery): it gathers the history, assesses, and moves a suspicious order
``paid → held`` instead of fulfilling it. The money stays captured and the stock reserved; an
admin releases the order (``held → paid → fulfilled``) or cancels it (``held → cancelled``,
stock released, then refunded), in ``checkout/review.py``.

Signals (thresholds in ``Settings.fraud_*``):

* velocity per account: orders by the same user within the window;
* velocity per card token: orders paid with the same ``payment_method`` within the window;
* velocity per address: distinct accounts shipping to the same (normalised) address;
* amount vs the user's own history: more than ``factor`` × their median previous order;
* amount vs everyone: above the global percentile (needs enough orders to mean anything),
  or above an absolute ceiling.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from serving.core.config import Settings

HELD = "held"


@dataclass(frozen=True)
class FraudRules:
    window_minutes: int = 60
    max_orders_per_account: int = 5
    max_orders_per_card: int = 5
    max_accounts_per_address: int = 3
    amount_vs_history_factor: float = 10.0
    min_history_orders: int = 3
    amount_global_percentile: float = 0.995
    global_min_orders: int = 200
    absolute_max_minor: int = 1_000_000

    @classmethod
    def from_settings(cls, settings: Settings) -> FraudRules:
        return cls(
            window_minutes=settings.fraud_window_minutes,
            max_orders_per_account=settings.fraud_max_orders_per_account,
            max_orders_per_card=settings.fraud_max_orders_per_card,
            max_accounts_per_address=settings.fraud_max_accounts_per_address,
            amount_vs_history_factor=settings.fraud_amount_vs_history_factor,
            min_history_orders=settings.fraud_min_history_orders,
            amount_global_percentile=settings.fraud_amount_global_percentile,
            global_min_orders=settings.fraud_global_min_orders,
            absolute_max_minor=settings.fraud_absolute_max_minor,
        )


@dataclass(frozen=True)
class OrderFacts:
    """What is known about the order being assessed."""

    user_id: int
    total_minor: int
    payment_method: str
    address_key: str


@dataclass(frozen=True)
class History:
    """Counts exclude the order being assessed."""

    account_orders_in_window: int = 0
    card_orders_in_window: int = 0
    other_accounts_at_address_in_window: int = 0
    user_previous_totals: Sequence[int] = ()
    global_order_count: int = 0
    global_percentile_minor: int | None = None


@dataclass(frozen=True)
class FraudDecision:
    hold: bool
    reasons: tuple[str, ...] = field(default=())

    @property
    def summary(self) -> str:
        return "; ".join(self.reasons)


def assess(facts: OrderFacts, history: History, rules: FraudRules | None = None) -> FraudDecision:
    """Every rule that fires is a reason; any reason holds the order."""
    rules = rules or FraudRules()
    reasons: list[str] = []
    if history.account_orders_in_window + 1 > rules.max_orders_per_account:
        reasons.append(
            f"velocity:account {history.account_orders_in_window + 1} orders "
            f"in {rules.window_minutes} min"
        )
    if history.card_orders_in_window + 1 > rules.max_orders_per_card:
        reasons.append(
            f"velocity:card {history.card_orders_in_window + 1} orders "
            f"in {rules.window_minutes} min"
        )
    if history.other_accounts_at_address_in_window + 1 > rules.max_accounts_per_address:
        reasons.append(
            f"velocity:address {history.other_accounts_at_address_in_window + 1} accounts "
            f"in {rules.window_minutes} min"
        )
    previous = [t for t in history.user_previous_totals if t > 0]
    if len(previous) >= rules.min_history_orders:
        median = statistics.median(previous)
        if facts.total_minor > rules.amount_vs_history_factor * median:
            reasons.append(
                f"amount:history {facts.total_minor} > {rules.amount_vs_history_factor:g} x "
                f"median {median:g}"
            )
    if (
        history.global_percentile_minor is not None
        and history.global_order_count >= rules.global_min_orders
        and facts.total_minor > history.global_percentile_minor
    ):
        reasons.append(
            f"amount:global {facts.total_minor} > p{rules.amount_global_percentile * 100:g} "
            f"{history.global_percentile_minor}"
        )
    if facts.total_minor > rules.absolute_max_minor:
        reasons.append(f"amount:ceiling {facts.total_minor} > {rules.absolute_max_minor}")
    return FraudDecision(bool(reasons), tuple(reasons))


_SPACES = re.compile(r"[^a-z0-9]+")


def address_key(address: dict[str, Any] | None) -> str:
    """A normalised shipping address: case, punctuation and spacing do not make it new."""
    address = address or {}
    parts = [
        str(address.get(k) or "") for k in ("country", "postal_code", "city", "line1", "line2")
    ]
    return "|".join(_SPACES.sub(" ", p.lower()).strip() for p in parts)
