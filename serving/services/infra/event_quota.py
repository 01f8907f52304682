"""How much one client may write to the clickstream per minute, in events and in bytes.

The request rate limiter counts requests, and a batch may hold 500 events and 1 MB, so one
anonymous client wrote 16 MB of events in 10 s without ever being limited. Each accepted batch
now also spends from token buckets sized per minute: one per session id (what a browser sends)
and one per network address (a client can mint session ids freely, but not addresses). An empty
bucket answers 429 problem+json with ``Retry-After``; bytes are spent as soon as the body is
read (junk counts too), events once the batch parses.

The buckets are the rate limiter's own (``serving/core/token_buckets.py``): in-process, or
shared through Redis by every worker when ``REDIS_URL`` is set. The quota is on whenever the
request rate limiter is (simulation and benchmarks turn both off on purpose).
"""

from __future__ import annotations

from serving.core.config import Settings
from serving.core.errors import TooManyRequests
from serving.core.token_buckets import InProcessBuckets, RedisBuckets


class EventQuotaExceeded(TooManyRequests):
    def __init__(self, what: str, retry_after: float) -> None:
        super().__init__(
            f"Event quota exceeded: {what}; retry in {{seconds}} s",
            type_="https://storeloop.dev/problems/event-quota",
            retry_after=retry_after,
        )


class EventQuota:
    """Per-minute budgets of events and bytes per session and per address."""

    def __init__(
        self,
        *,
        session_events: int,
        session_bytes: int,
        address_events: int,
        address_bytes: int,
        redis_url: str | None = None,
    ) -> None:
        def bucket(per_minute: int) -> InProcessBuckets | RedisBuckets | None:
            if per_minute <= 0:
                return None
            if redis_url:
                return RedisBuckets(redis_url, per_minute / 60.0, per_minute, "storeloop:evq:")
            return InProcessBuckets(per_minute / 60.0, per_minute)

        self._events = {"session": bucket(session_events), "address": bucket(address_events)}
        self._bytes = {"session": bucket(session_bytes), "address": bucket(address_bytes)}

    async def _spend(self, buckets: dict, unit: str, amount: int, keys: dict[str, str]) -> None:
        if amount <= 0:
            return
        for scope, bucket in buckets.items():
            if bucket is None:
                continue
            # A batch bigger than a whole minute's budget spends all of it (so it can pass once
            # a minute) rather than never fitting.
            cost = float(min(amount, bucket.burst))
            decision = await bucket.take(f"{unit}:{scope}:{keys[scope]}", cost)
            if not decision.allowed:
                raise EventQuotaExceeded(f"too many {unit} from this {scope}", decision.retry_after)

    async def spend_bytes(self, amount: int, *, session_id: str, address: str) -> None:
        await self._spend(self._bytes, "bytes", amount, {"session": session_id, "address": address})

    async def spend_events(self, amount: int, *, session_id: str, address: str) -> None:
        keys = {"session": session_id, "address": address}
        await self._spend(self._events, "events", amount, keys)


def from_settings(settings: Settings) -> EventQuota | None:
    if not settings.rate_limit_enabled:
        return None
    return EventQuota(
        session_events=settings.event_quota_session_events_per_minute,
        session_bytes=settings.event_quota_session_bytes_per_minute,
        address_events=settings.event_quota_address_events_per_minute,
        address_bytes=settings.event_quota_address_bytes_per_minute,
        redis_url=settings.redis_url,
    )
