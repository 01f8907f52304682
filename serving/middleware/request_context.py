"""Request id, structured access log, Prometheus metrics and security headers.

Written as plain ASGI (not ``BaseHTTPMiddleware``) because it runs on every request and the
product-read benchmark leaves no room for an extra task per request.
"""

from __future__ import annotations

import logging
import re
import time

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.core.clock import note_simulated, reset_simulated_now, set_simulated_now
from serving.core.ids import new_request_id
from serving.core.logging import request_id_var

log = logging.getLogger("storeloop.access")

REQUESTS = Counter("storeloop_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "storeloop_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
# Request ids are a random per-process prefix plus a counter: unique across processes and
# restarts like a uuid4, without a call into the kernel's random source on every request.


SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
#: For API (non-HTML) responses: nothing in a JSON body may ever load or frame anything. HTML
#: responses keep their own policy (the storefront and the docs pages set their own).
API_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")


class RequestContextMiddleware:
    """Gives every request an id, times it, logs it as JSON and adds safety headers."""

    def __init__(self, app: ASGIApp, *, simulation_mode: bool = False) -> None:
        self.app = app
        self.simulation_mode = simulation_mode

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.match(incoming) else new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        rid_token = request_id_var.set(request_id)
        token = None
        if self.simulation_mode and b"x-sim-time" in headers:
            token = _apply_sim_time(headers[b"x-sim-time"])
        started = time.perf_counter()
        status_holder = [500]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                sent = list(message.get("headers", []))
                extra = [(b"x-request-id", request_id.encode()), *SECURITY_HEADERS]
                if not any(
                    k.lower() == b"content-security-policy"
                    or (k.lower() == b"content-type" and v.startswith(b"text/html"))
                    for k, v in sent
                ):
                    extra.append(API_CSP)
                message["headers"] = sent + extra
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            if token is not None:
                reset_simulated_now(token)
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            status = status_holder[0]
            REQUESTS.labels(method, template, str(status)).inc()
            LATENCY.labels(method, template).observe(elapsed)
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "%s %s %s",
                    method,
                    scope["path"],
                    status,
                    extra={
                        "fields": {
                            "method": method,
                            "path": scope["path"],
                            "route": template,
                            "status": status,
                            "ms": round(elapsed * 1000, 2),
                        }
                    },
                )
            request_id_var.reset(rid_token)


def _apply_sim_time(raw: bytes):
    from datetime import datetime

    try:
        value = datetime.fromisoformat(raw.decode("latin-1"))
    except ValueError:
        return None
    note_simulated(value)
    return set_simulated_now(value)
