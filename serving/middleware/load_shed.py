"""Load shedding: a cap on requests in flight per process; over it, a fast 503 + Retry-After.

Per-client rate limits do not protect the process from many clients at once (a flash sale).
Without a cap, every extra request waits in the event loop or the thread pool and the latency of
*all* requests grows until clients time out. With it, the requests over the cap are refused in
microseconds with ``503`` problem+json and ``Retry-After``, and the admitted ones keep their
latency. Health probes and metrics are never shed, so an overloaded worker is not restarted by
its orchestrator for being busy.
"""

from __future__ import annotations

import orjson
from prometheus_client import Counter, Gauge
from starlette.types import ASGIApp, Receive, Scope, Send

from serving.core.errors import PROBLEM_JSON

EXEMPT = frozenset({"/healthz", "/readyz", "/metrics"})

SHED = Counter("storeloop_requests_shed_total", "Requests refused by the in-flight cap")
IN_FLIGHT = Gauge("storeloop_requests_in_flight", "Requests being handled by this process")


class LoadShedMiddleware:
    """Admit at most ``max_in_flight`` HTTP requests at once; refuse the rest immediately.

    A plain counter is enough: the ASGI app runs on one event loop, so the check and the
    increment cannot interleave with another request's.
    """

    def __init__(self, app: ASGIApp, *, max_in_flight: int, retry_after: int = 1) -> None:
        self.app = app
        self.max_in_flight = max_in_flight
        self.retry_after = max(1, int(retry_after))
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            SHED.inc()
            await self._refuse(scope, send)
            return
        self.in_flight += 1
        IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
            IN_FLIGHT.dec()

    async def _refuse(self, scope: Scope, send: Send) -> None:
        body = orjson.dumps(
            {
                "type": "https://storeloop.dev/problems/overloaded",
                "title": "Service Unavailable",
                "status": 503,
                "detail": f"The server is at capacity; retry in {self.retry_after} s",
                "instance": scope["path"],
            }
        )
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", PROBLEM_JSON.encode()),
                    (b"retry-after", str(self.retry_after).encode()),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
