"""Deadlines for the suite's waits that stretch with the machine, and name what timed out.

A correct build failed under a load average of ~10 on two cores: "server did not start", and
the schemathesis test hit pytest's 300 s limit. Every wait for a server or a background outcome
goes through :func:`scaled`, which multiplies its base deadline by ``STORELOOP_TEST_TIME_SCALE``
(default 1) and by how overloaded the machine is right now (the 1-minute load average per core,
when above 1). Deadlines only bound how long a wait may last: a passing wait returns as soon as
its condition holds, so scaling never slows a healthy run down.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

TIME_SCALE_ENV = "STORELOOP_TEST_TIME_SCALE"

T = TypeVar("T")


def configured_scale() -> float:
    """The operator's multiplier from ``STORELOOP_TEST_TIME_SCALE`` (at least 1)."""
    raw = os.environ.get(TIME_SCALE_ENV, "").strip()
    try:
        value = float(raw) if raw else 1.0
    except ValueError as exc:
        raise ValueError(f"{TIME_SCALE_ENV}={raw!r} is not a number") from exc
    return max(1.0, value)


def load_factor() -> float:
    """How many times over the cores are booked right now (1 on an idle machine)."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        return 1.0
    return max(1.0, load / (os.cpu_count() or 1))


def time_scale() -> float:
    return configured_scale() * load_factor()


def scaled(seconds: float) -> float:
    """``seconds`` stretched by the configured scale and the machine's current load."""
    return seconds * time_scale()


def describe(base: float) -> str:
    """How a deadline was reached, for timeout messages."""
    try:
        load = f"{os.getloadavg()[0]:.1f}"
    except OSError:
        load = "unknown"
    return (
        f"{scaled(base):.0f} s (base {base:g} s x {TIME_SCALE_ENV}={configured_scale():g} "
        f"x load {load} on {os.cpu_count()} cores; raise {TIME_SCALE_ENV} on a slow machine)"
    )


def wait_until(
    predicate: Callable[[], T],
    *,
    timeout: float,
    what: str,
    interval: float = 0.05,
    alive: Callable[[], Any] | None = None,
) -> T:
    """Poll until ``predicate()`` is truthy and return it; else raise naming ``what``.

    ``alive``, when given, is checked on every round: a falsy answer (a server process that
    exited) fails at once instead of waiting out the deadline.
    """
    deadline = time.monotonic() + scaled(timeout)
    while True:
        value = predicate()
        if value:
            return value
        if alive is not None and not alive():
            raise RuntimeError(f"gave up waiting for {what}: the process it needs has exited")
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what} after {describe(timeout)}")
        time.sleep(interval)


def poll(predicate, *, timeout: float, interval: float = 0.05):
    """Wait for ``predicate()`` to be truthy, up to a deadline (no fixed sleeps).

    The deadline stretches with the machine's load and ``STORELOOP_TEST_TIME_SCALE``
    (above); the caller asserts on the value, which names what it waited for.
    """
    deadline = time.monotonic() + scaled(timeout)
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
