"""A thin HTTP client for the shop's public API, as a browser or app would use it.

Every request carries the simulated time (``X-Sim-Time``; the server honours it only in
simulation mode) and the visit's ``X-Session-Id``. Endpoints that other teams are still building
(search, recommendations, cart, payments, orders) may answer 404; the client remembers that for
a while and re-probes later, so a long run switches to the real endpoint as soon as it exists.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from datetime import datetime
from typing import Any, Protocol


class HttpResponse(Protocol):
    """What the simulator reads of a response: ``httpx.Response`` or ``inprocess.Response``."""

    status_code: int

    @property
    def text(self) -> str: ...

    def json(self) -> Any: ...

    def raise_for_status(self) -> Any: ...


class HttpClient(Protocol):
    """``httpx.AsyncClient`` for a URL target; ``inprocess.AsgiClient`` for an in-process app."""

    async def request(self, method: str, path: str, **kwargs: Any) -> Any: ...


#: Optional features and the path prefix whose 404/405 means "not built yet".
FEATURES = ("search", "recs", "cart", "payments", "orders")
_DIGITS = re.compile(r"/(?!v\d+/)[^/?]*\d[^/?]*")


class Api:
    """Async wrapper over one HTTP client shared by all simulated shoppers."""

    def __init__(self, http: HttpClient, *, reprobe_seconds: float = 30.0) -> None:
        self.http = http
        self.reprobe_seconds = reprobe_seconds
        self._missing: dict[str, float] = {}
        self.requests = 0
        self.statuses: Counter[int] = Counter()
        #: Wall seconds and call counts per route shape, to tell where a run spends its time.
        self.seconds: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()

    def available(self, feature: str) -> bool:
        """False while ``feature`` recently answered 404; True again after the re-probe delay."""
        since = self._missing.get(feature)
        return since is None or time.monotonic() - since > self.reprobe_seconds

    def mark(self, feature: str, response: HttpResponse) -> bool:
        """Record whether ``feature`` exists given a response; returns True if it does."""
        if response.status_code in (404, 405) and route_missing(response):
            self._missing[feature] = time.monotonic()
            return False
        self._missing.pop(feature, None)
        return True

    async def call(
        self,
        method: str,
        path: str,
        *,
        at: datetime,
        session_id: str | None = None,
        token: str | None = None,
        json: Any = None,
        data: dict[str, str] | None = None,
        params: Any = None,
        headers: dict[str, str] | None = None,
    ) -> HttpResponse:
        """One request; 429 and 503 are retried a few times with a short back-off."""
        h = {"X-Sim-Time": at.isoformat()}
        if session_id:
            h["X-Session-Id"] = session_id
        if token:
            h["Authorization"] = f"Bearer {token}"
        if headers:
            h.update(headers)
        response: HttpResponse | None = None
        route = f"{method} {_DIGITS.sub('{id}', path)}"
        for attempt in range(5):
            started = time.perf_counter()
            response = await self.http.request(
                method, path, json=json, data=data, params=params, headers=h
            )
            self.seconds[route] += time.perf_counter() - started
            self.calls[route] += 1
            self.requests += 1
            self.statuses[response.status_code] += 1
            if response.status_code not in (429, 503):
                break
            await asyncio.sleep(0.02 * 2**attempt)  # the server asked us to back off
        assert response is not None
        return response


def route_missing(response: HttpResponse) -> bool:
    """A 404 from the router (no such route) rather than from a handler (no such thing).

    The router's 404 carries the generic "Not Found" detail; handlers name what is missing.
    """
    if response.status_code == 405:
        return True
    try:
        body = response.json()
    except ValueError:
        return True
    detail = str(body.get("detail", "")) if isinstance(body, dict) else ""
    return detail in ("", "Not Found")
