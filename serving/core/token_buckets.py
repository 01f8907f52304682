"""Token buckets keyed by client: in-process, or shared by every worker through Redis.

The request rate limiter (middleware/rate_limit.py), the review limit and the clickstream quota
all spend from such buckets; they live here, below all three, so services never import
middleware. With several uvicorn workers an in-process bucket would let a client through once
per worker, so when ``REDIS_URL`` is set the bucket lives in Redis and is updated atomically by
a Lua script.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    allowed: bool
    remaining: int
    retry_after: float


class InProcessBuckets:
    """Token buckets keyed by client, for a single process."""

    def __init__(self, rate: float, burst: int, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._state: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    async def take(self, key: str, cost: float = 1.0) -> Decision:
        return self.take_sync(key, cost)

    def take_sync(self, key: str, cost: float = 1.0, now: float | None = None) -> Decision:
        """Take ``cost`` tokens; ``now`` (seconds) lets a caller use its own clock."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, stamp = self._state.get(key, (float(self.burst), now))
            tokens = min(self.burst, tokens + max(0.0, now - stamp) * self.rate)
            if tokens >= cost:
                tokens -= cost
                allowed, retry = True, 0.0
            else:
                allowed, retry = False, (cost - tokens) / self.rate
            if len(self._state) >= self.max_keys and key not in self._state:
                self._state.clear()  # bounded memory under a key-spraying client
            self._state[key] = (tokens, now)
        return Decision(allowed, int(tokens), retry)


TOKEN_BUCKET_LUA = """
local key = KEYS[1]
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
-- ARGV[4], when given, is the caller's clock (a simulated shop's time); else Redis's own.
local now = tonumber(ARGV[4])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local state = redis.call('HMGET', key, 'tokens', 'stamp')
local tokens = tonumber(state[1]) or burst
local stamp = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
local allowed = 0
local retry = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  retry = (cost - tokens) / rate
end
redis.call('HSET', key, 'tokens', tokens, 'stamp', now)
redis.call('EXPIRE', key, math.ceil(burst / rate) + 1)
return {allowed, tostring(tokens), tostring(retry)}
"""


class RedisBuckets:
    """Token buckets in Redis, shared by every worker and host."""

    def __init__(self, url: str, rate: float, burst: int, prefix: str = "storeloop:rl:") -> None:
        import redis.asyncio as aioredis

        self.rate = rate
        self.burst = burst
        self.prefix = prefix
        self._client = aioredis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._script = self._client.register_script(TOKEN_BUCKET_LUA)
        self._fallback = InProcessBuckets(rate, burst)

    async def take(self, key: str, cost: float = 1.0) -> Decision:
        try:
            allowed, tokens, retry = await self._script(
                keys=[self.prefix + key], args=[self.rate, self.burst, cost]
            )
        except Exception:  # Redis down: limit per process rather than fail requests
            return self._fallback.take_sync(key, cost)
        return Decision(bool(int(allowed)), int(float(tokens)), float(retry))

    async def aclose(self) -> None:
        await self._client.aclose()
