"""A per-account rate on posting reviews, against review spam (OWASP API6, business flows).

"One review per product and user" stops stuffing one product, but an account could still
review the whole catalogue in a minute. Each account gets a token bucket: ``burst`` reviews at
once, refilled at ``per_hour``; an empty bucket answers 429 problem+json with Retry-After.

The bucket is keyed by the account, not the client address (the account is what writes the
review, and the per-address limiter already covers everything else). With ``REDIS_URL`` it
lives in Redis, updated atomically by the same Lua script as the request rate limiter, so every
worker and host shares one count; if Redis fails, the process falls back to its own buckets
rather than refusing reviews. Time is the shop's clock (``serving.core.clock``), so simulated
shoppers refill at simulated speed.
"""

from __future__ import annotations

import logging

from serving.core.clock import utcnow
from serving.core.config import Settings
from serving.core.errors import TooManyRequests
from serving.core.token_buckets import TOKEN_BUCKET_LUA, Decision, InProcessBuckets

log = logging.getLogger("storeloop.reviews")


class TooManyReviews(TooManyRequests):
    def __init__(self, retry_after: float) -> None:
        super().__init__(
            "Too many reviews from this account; try again in {seconds} s",
            type_="https://storeloop.dev/problems/review-rate-limited",
            retry_after=retry_after,
        )


class ReviewLimiter:
    """Token buckets per account: in-process, or shared through Redis when a URL is given."""

    def __init__(
        self,
        *,
        burst: int,
        per_hour: float,
        redis_url: str | None = None,
        prefix: str = "storeloop:reviews:",
    ) -> None:
        self.burst = burst
        self.rate = per_hour / 3600.0
        self.prefix = prefix
        self.enabled = burst > 0 and per_hour > 0
        self._local = InProcessBuckets(self.rate, burst) if self.enabled else None
        self._script = None
        if self.enabled and redis_url:
            import redis

            client = redis.Redis.from_url(redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
            self._script = client.register_script(TOKEN_BUCKET_LUA)

    def _take(self, user_id: int, now: float) -> Decision:
        assert self._local is not None
        key = f"u:{user_id}"
        if self._script is not None:
            try:
                allowed, tokens, retry = self._script(
                    keys=[self.prefix + key], args=[self.rate, self.burst, 1, now]
                )
                return Decision(bool(int(allowed)), int(float(tokens)), float(retry))
            except Exception:  # Redis down: limit per process rather than refuse reviews
                log.warning("review limit: Redis unavailable, using in-process buckets")
        return self._local.take_sync(key, 1.0, now=now)

    def check(self, user_id: int, now: float | None = None) -> None:
        """Spend one review from ``user_id``'s bucket or raise :class:`TooManyReviews`."""
        if not self.enabled:
            return
        decision = self._take(user_id, utcnow().timestamp() if now is None else now)
        if not decision.allowed:
            raise TooManyReviews(decision.retry_after)


def from_settings(settings: Settings) -> ReviewLimiter:
    return ReviewLimiter(
        burst=settings.review_burst,
        per_hour=settings.reviews_per_hour,
        redis_url=settings.redis_url,
    )
