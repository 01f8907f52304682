"""An injectable clock, so the synthetic shoppers' simulated time reaches domain code."""

from __future__ import annotations

import threading
from contextvars import ContextVar
from datetime import UTC, datetime

_override: ContextVar[datetime | None] = ContextVar("storeloop_sim_time", default=None)
#: The latest simulated time any request of this process carried (simulation mode only).
_high_water: datetime | None = None
_high_water_lock = threading.Lock()


def utcnow() -> datetime:
    """Now, timezone-aware UTC; the simulated time when one is set for this request."""
    sim = _override.get()
    return sim if sim is not None else datetime.now(UTC)


def set_simulated_now(value: datetime | None):
    """Set the simulated time for the current context; returns a token for ``reset``."""
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return _override.set(value)


def note_simulated(value: datetime) -> None:
    """Remember ``value`` if it is the latest simulated time seen so far in this process.

    Background work (recovery, the simulated carrier) has no request clock; in simulation mode
    it runs on this one, so it neither judges month-old simulated orders by the wall clock nor
    stamps them with it."""
    global _high_water
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    with _high_water_lock:
        if _high_water is None or value > _high_water:
            _high_water = value


def simulated_high_water() -> datetime | None:
    """The latest simulated time seen by this process (None before the first one)."""
    return _high_water


def reset_simulated_now(token) -> None:
    _override.reset(token)


def simulated_override() -> datetime | None:
    """The simulated time set for this context, if any (to carry it to another thread)."""
    return _override.get()
