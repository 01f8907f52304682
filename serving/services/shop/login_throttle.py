"""Failed-login back-off per account and address pair, and a failure limit per address.

A lock-out per account lets anyone lock the real owner out by guessing wrong ten times, and
does nothing against one address spraying one guess at many accounts. So two counters:

* **account + address pair**: the first ``free`` failures cost nothing; from then on each
  failure doubles a wait (``base``, 2×``base``, … up to ``cap``) before that pair may try
  again. An attacker is slowed down exponentially; the owner, signing in from another address,
  is not affected. A success from the pair clears it; otherwise it is forgotten ``idle``
  seconds after its last failure.
* **address**: failures for any account leak away at ``free`` per minute; an address above
  ``free`` outstanding failures backs off the same way. Successes do not clear it, so one
  valid account interleaved into a spray does not reset the count.

With ``REDIS_URL`` the counters live in Redis, updated atomically by one Lua script, so every
worker and host shares them; if Redis fails, the process falls back to its own counters rather
than refusing sign-ins.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass

from serving.core.config import Settings
from serving.core.errors import TooManyRequests

log = logging.getLogger("storeloop.accounts")


@dataclass(frozen=True)
class Backoff:
    """How one counter grows and shrinks.

    ``free`` failures are allowed before any wait; ``decay`` is how many failures are forgiven
    per second (0: none, the counter only resets when idle for ``idle`` seconds).
    """

    free: int
    base: float
    cap: float
    decay: float
    idle: float

    def delay(self, failures: float) -> float:
        """Seconds to wait after a failure that brought the counter to ``failures``."""
        over = math.floor(failures) - self.free
        if over < 0:
            return 0.0
        return min(self.cap, self.base * 2.0 ** min(over, 60))


class TooManyLogins(TooManyRequests):
    def __init__(self, retry_after: float, *, scope: str) -> None:
        super().__init__(
            f"Too many failed sign-in attempts {scope}; try again in {{seconds}} s",
            type_="https://storeloop.dev/problems/login-throttled",
            retry_after=retry_after,
        )


# KEYS[1]: the counter. ARGV: op ("check" | "fail" | "clear"), free, base, cap, decay, idle,
# and optionally the caller's clock. Returns the seconds the key must still wait (0: may try).
BACKOFF_LUA = """
local key = KEYS[1]
local op = ARGV[1]
local free = tonumber(ARGV[2])
local base = tonumber(ARGV[3])
local cap = tonumber(ARGV[4])
local decay = tonumber(ARGV[5])
local idle = tonumber(ARGV[6])
local now = tonumber(ARGV[7])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
if op == 'clear' then
  redis.call('DEL', key)
  return '0'
end
local state = redis.call('HMGET', key, 'n', 'stamp', 'until')
local n = tonumber(state[1]) or 0
local stamp = tonumber(state[2]) or now
local untl = tonumber(state[3]) or 0
if op == 'check' then
  return tostring(math.max(0, untl - now))
end
n = math.max(0, n - math.max(0, now - stamp) * decay) + 1
local over = math.floor(n) - free
if over >= 0 then
  untl = now + math.min(cap, base * 2 ^ math.min(over, 60))
end
redis.call('HSET', key, 'n', n, 'stamp', now, 'until', untl)
redis.call('EXPIRE', key, math.ceil(math.max(untl - now, 0) + idle) + 1)
return tostring(math.max(0, untl - now))
"""


class _LocalCounters:
    """The in-process twin of :data:`BACKOFF_LUA` (same arithmetic, bounded memory)."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self.max_keys = max_keys
        self._state: dict[str, tuple[float, float, float]] = {}  # n, stamp, until
        self._lock = threading.Lock()

    def run(self, key: str, op: str, rule: Backoff, now: float) -> float:
        with self._lock:
            if op == "clear":
                self._state.pop(key, None)
                return 0.0
            n, stamp, until = self._state.get(key, (0.0, now, 0.0))
            if now - max(stamp, until) > rule.idle:
                n, stamp, until = 0.0, now, 0.0  # idle long enough: forgotten
            if op == "check":
                return max(0.0, until - now)
            n = max(0.0, n - max(0.0, now - stamp) * rule.decay) + 1
            if math.floor(n) >= rule.free:
                until = now + rule.delay(n)
            if len(self._state) >= self.max_keys and key not in self._state:
                self._state.clear()  # bounded memory under a key-spraying client
            self._state[key] = (n, now, until)
            return max(0.0, until - now)


class LoginThrottle:
    """Back-off per (account, address) pair plus a failure limit per address."""

    def __init__(
        self,
        *,
        pair: Backoff,
        address: Backoff | None,
        redis_url: str | None = None,
        prefix: str = "storeloop:login:",
    ) -> None:
        self.pair = pair
        self.address = address
        self.prefix = prefix
        self._local = _LocalCounters()
        self._script = None
        if redis_url:
            import redis

            client = redis.Redis.from_url(redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
            self._script = client.register_script(BACKOFF_LUA)

    def _run(self, key: str, op: str, rule: Backoff, now: float | None) -> float:
        if self._script is not None:
            args: list[object] = [op, rule.free, rule.base, rule.cap, rule.decay, rule.idle]
            if now is not None:
                args.append(now)
            try:
                return float(self._script(keys=[self.prefix + key], args=args))
            except Exception:  # Redis down: count per process rather than refuse sign-ins
                log.warning("login throttle: Redis unavailable, using in-process counters")
        return self._local.run(key, op, rule, time.monotonic() if now is None else now)

    @staticmethod
    def _keys(email: str, address: str) -> tuple[str, str]:
        return f"pair:{address}|{email}", f"addr:{address}"

    def check(self, email: str, address: str, now: float | None = None) -> None:
        """Raise :class:`TooManyLogins` while this pair or this address must wait."""
        pair_key, addr_key = self._keys(email, address)
        if self.address is not None:
            wait = self._run(addr_key, "check", self.address, now)
            if wait > 0:
                raise TooManyLogins(wait, scope="from this address")
        wait = self._run(pair_key, "check", self.pair, now)
        if wait > 0:
            raise TooManyLogins(wait, scope="for this account from this address")

    def failed(self, email: str, address: str, now: float | None = None) -> None:
        pair_key, addr_key = self._keys(email, address)
        self._run(pair_key, "fail", self.pair, now)
        if self.address is not None:
            self._run(addr_key, "fail", self.address, now)

    def succeeded(self, email: str, address: str, now: float | None = None) -> None:
        """A right password from this address clears its pair (not the address counter)."""
        self._run(self._keys(email, address)[0], "clear", self.pair, now)


def from_settings(settings: Settings) -> LoginThrottle:
    pair = Backoff(
        free=max(1, settings.login_attempts_per_minute),
        base=settings.login_backoff_base_seconds,
        cap=settings.login_backoff_max_seconds,
        decay=0.0,
        idle=settings.login_failure_memory_seconds,
    )
    per_address = settings.login_failures_per_address_per_minute
    address = (
        Backoff(
            free=per_address,
            base=settings.login_backoff_base_seconds,
            cap=settings.login_backoff_max_seconds,
            decay=per_address / 60.0,
            idle=settings.login_failure_memory_seconds,
        )
        if per_address > 0
        else None
    )
    return LoginThrottle(pair=pair, address=address, redis_url=settings.redis_url)
