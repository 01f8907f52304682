"""Token-bucket rate limiting per client, in-process or shared through Redis.

With several uvicorn workers an in-process bucket would let a client through once per worker,
so when ``REDIS_URL`` is set the bucket lives in Redis and is updated atomically by a Lua script.
Responses carry ``RateLimit-*`` headers; a refused request gets 429 with ``Retry-After``.
"""

from __future__ import annotations

import math

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.core.errors import PROBLEM_JSON
from serving.core.token_buckets import InProcessBuckets, RedisBuckets


def client_key(scope: Scope) -> str:
    """The client a request counts against: its network address.

    Keying on a token would let a client mint new keys by sending junk tokens, so the address
    is the one thing a client cannot vary freely.
    """
    client = scope.get("client")
    return "ip:" + (client[0] if client else "unknown")


EXEMPT = ("/healthz", "/readyz", "/metrics")


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, *, buckets: InProcessBuckets | RedisBuckets) -> None:
        self.app = app
        self.buckets = buckets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT:
            await self.app(scope, receive, send)
            return
        decision = await self.buckets.take(client_key(scope))
        limit = self.buckets.burst
        if not decision.allowed:
            retry = max(1, math.ceil(decision.retry_after))
            body = orjson.dumps(
                {
                    "type": "about:blank",
                    "title": "Too Many Requests",
                    "status": 429,
                    "detail": f"Rate limit exceeded; retry in {retry} s",
                    "instance": scope["path"],
                }
            )
            await send(
                {
                    "type": "http.response.start",
                    "status": 429,
                    "headers": [
                        (b"content-type", PROBLEM_JSON.encode()),
                        (b"retry-after", str(retry).encode()),
                        *_headers(limit, 0, retry),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        reset = max(0, math.ceil((limit - decision.remaining) / self.buckets.rate))

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + _headers(
                    limit, decision.remaining, reset
                )
            await send(message)

        await self.app(scope, receive, send_wrapper)


def _headers(limit: int, remaining: int, reset: int) -> list[tuple[bytes, bytes]]:
    return [
        (b"ratelimit-limit", str(limit).encode()),
        (b"ratelimit-remaining", str(max(0, remaining)).encode()),
        (b"ratelimit-reset", str(reset).encode()),
    ]
