"""An injectable clock, so the synthetic shoppers' simulated time reaches domain code."""

from __future__ import annotations

from contextvars import ContextVar
from datetime import UTC, datetime

_override: ContextVar[datetime | None] = ContextVar("storeloop_sim_time", default=None)


def utcnow() -> datetime:
    """Now, timezone-aware UTC; the simulated time when one is set for this request."""
    sim = _override.get()
    return sim if sim is not None else datetime.now(UTC)


def set_simulated_now(value: datetime | None):
    """Set the simulated time for the current context; returns a token for ``reset``."""
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return _override.set(value)


def reset_simulated_now(token) -> None:
    _override.reset(token)


def simulated_override() -> datetime | None:
    """The simulated time set for this context, if any (to carry it to another thread)."""
    return _override.get()
