"""A circuit breaker: stop calling a payment provider that is down, and find out when it is back.

Without it, every checkout during a provider outage would reserve stock, wait out the full
provider timeout and then fail, so a slow provider turns into a queue of threads holding
reservations. The breaker's states::

    closed ──N consecutive failures──▶ open ──cool-down──▶ half-open ──probe ok──▶ closed
                                         ▲                     │
                                         └─────probe fails─────┘

Only outages count as failures (timeouts, unreachable, 5xx); a decline or a refused call means
the provider answered, which counts as a success. While open, :meth:`acquire` refuses at once;
after the cool-down exactly one call is let through as a probe while the others keep being
refused, so a provider that is coming back is not hit by the whole backlog at once.

State is per process (one breaker per checkout runtime): each worker finds out about an outage
by itself after N failures, which is cheap next to sharing the state and good enough here.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

from . import ProviderUnavailable

log = logging.getLogger("storeloop.payments.breaker")

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"


class CircuitOpen(ProviderUnavailable):
    """Refused without calling the provider; ``retry_after`` is the rest of the cool-down."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(f"payment provider circuit open; retry in {retry_after:.1f} s")


class CircuitBreaker:
    """Consecutive-failure breaker with a single half-open probe; thread-safe.

    ``clock`` is monotonic seconds; tests pass their own to step over the cool-down.
    """

    def __init__(
        self,
        *,
        failure_threshold: int,
        reset_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        name: str = "payments",
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self.failure_threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self.clock = clock
        self.name = name
        self._lock = threading.Lock()
        self._state = CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False

    @property
    def state(self) -> str:
        """closed, open, or half_open (cool-down over: the next call is a probe)."""
        with self._lock:
            return self._current()

    @property
    def failures(self) -> int:
        return self._failures

    def _current(self) -> str:
        if self._state == OPEN and self.clock() - self._opened_at >= self.reset_seconds:
            return HALF_OPEN
        return self._state

    def _wait(self) -> float:
        return max(0.0, self.reset_seconds - (self.clock() - self._opened_at))

    def refusing_for(self) -> float:
        """Seconds for which a new call would be refused (0 when one would be let through).

        A read-only look for callers that want to refuse work before starting it; it never
        takes the probe. While a probe is out, others are refused for a short while.
        """
        if self._state == CLOSED:  # the common case, without the lock
            return 0.0
        with self._lock:
            current = self._current()
            if current == OPEN:
                return self._wait()
            if current == HALF_OPEN and self._probing:
                return 1.0
            return 0.0

    def acquire(self) -> None:
        """Let a call through or raise :class:`CircuitOpen`; in half-open, one probe at a time."""
        if self._state == CLOSED:
            return
        with self._lock:
            current = self._current()
            if current == CLOSED:
                return
            if current == OPEN:
                raise CircuitOpen(self._wait())
            if self._probing:
                raise CircuitOpen(1.0)
            self._state = HALF_OPEN
            self._probing = True
            log.info("%s circuit half-open: probing the provider", self.name)

    def success(self) -> None:
        """The provider answered: close (a probe succeeded) and forget earlier failures."""
        if self._state == CLOSED and self._failures == 0:
            return
        with self._lock:
            if self._state != CLOSED:
                log.warning("%s circuit closed: the provider answers again", self.name)
            self._state = CLOSED
            self._failures = 0
            self._probing = False

    def failure(self) -> None:
        """An outage-type failure: count it, open at the threshold, re-open a failed probe."""
        with self._lock:
            self._failures += 1
            reopen = self._state == HALF_OPEN
            if reopen or (self._state == CLOSED and self._failures >= self.failure_threshold):
                self._state = OPEN
                self._opened_at = self.clock()
                self._probing = False
                log.warning(
                    "%s circuit open after %d consecutive failures; next probe in %.1f s",
                    self.name,
                    self._failures,
                    self.reset_seconds,
                )

    def release(self) -> None:
        """A call ended without telling us anything about the provider (e.g. our own bug):
        give the probe slot back without changing the state."""
        with self._lock:
            self._probing = False


def retry_after_header(seconds: float) -> str:
    """Whole seconds, at least 1, for a ``Retry-After`` header."""
    return str(max(1, math.ceil(seconds)))
