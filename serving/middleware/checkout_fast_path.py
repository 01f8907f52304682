"""``POST /api/v1/orders`` straight to the checkout batch, without FastAPI's routing.

Why: at 300 orders/s a checkout's own work is a batch's share (about 2 ms of CPU), and the
framework's share on the event loop came close to it: the route is matched against every
router before it, its five dependencies are solved one by one, the exception, exit-stack and
routing layers each wrap the call. All that time holds the worker's GIL, which the batch
thread needs to finish the orders that requests are waiting for.

This layer sits inside every middleware of ours (request id, access log and metrics, load
shedding, body limit, rate limit, CORS), so those still see the request. It takes only the
usual case: a JSON body that ``OrderCreate`` accepts, a bearer token that verifies, an
Idempotency-Key, a card the batch can charge. It then does what the route does (the same
caller check, the same batch, :func:`serving.api.routes.orders.order_response`). Anything
else, before the order is queued, goes on to the app with the body replayed, so every error
is the route's own error, rendered by the app's handlers.
"""

from __future__ import annotations

from typing import Any

import orjson
from prometheus_client import Counter
from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.api.deps import EventSink
from serving.api.problems import problem_response
from serving.api.routes.orders import order_response
from serving.api.schemas.orders import OrderCreate
from serving.core.errors import ProblemError
from serving.services import recovery
from serving.services.caller_cache import MISS
from serving.services.idempotency import MAX_KEY_LENGTH

PATH = "/api/v1/orders"
HANDLED = Counter(
    "storeloop_checkout_fast_path_total",
    "POST /api/v1/orders by who answered: placed here, or passed on to the route",
    ["outcome"],
)
_PLACED = HANDLED.labels("placed")
_PASSED_ON = HANDLED.labels("passed_on")
_JSON_TYPES = (b"application/json", b"application/json; charset=utf-8")


class CheckoutFastPath:
    """Places the usual ``POST /api/v1/orders`` itself; passes everything else on."""

    def __init__(self, app: ASGIApp, *, fastapi_app: Any) -> None:
        self.app = app
        self.fastapi_app = fastapi_app
        self._route: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != PATH:
            await self.app(scope, receive, send)
            return
        body, more = await _read_body(receive)
        if more is not None:  # the client went away mid-body: the app deals with it
            await self.app(scope, _replay(body, more, receive), send)
            return
        placed = await self._place(scope, body)
        if placed is None:
            _PASSED_ON.inc()
            await self.app(scope, _replay(body, None, receive), send)
            return
        _PLACED.inc()
        await placed(scope, receive, send)

    async def _place(self, scope: Scope, raw: bytes) -> Any:
        """The response of a placed order, or None to let the app handle the request."""
        state = self.fastapi_app.state
        rt = recovery.runtime(self.fastapi_app)
        batcher = rt.batcher()
        if batcher is None:
            return None
        headers = _headers(scope)
        token = _bearer(headers.get(b"authorization"))
        key = headers.get(b"idempotency-key")
        if token is None or key is None or headers.get(b"content-type") not in _JSON_TYPES:
            return None
        try:
            key_text = key.decode("latin-1")
            payload = OrderCreate.model_validate(orjson.loads(raw)).model_dump(mode="json")
            claims = state.tokens.verify(token)
        except (ValueError, ValidationError, ProblemError):
            return None
        if len(key_text) > MAX_KEY_LENGTH or not key_text.strip():
            return None
        if not batcher.accepts(payload):
            return None
        row = state.callers.peek(token)
        if row is not MISS and (row is None or not row.is_active):
            return None  # the route answers the 401
        request_state = scope.setdefault("state", {})
        request_state["user_id"] = claims.user_id
        scope["route"] = self._orders_route()
        events = EventSink(
            log=getattr(state, "event_log", None), request_id=request_state.get("request_id")
        )
        try:
            outcome = await batcher.place(
                user_id=claims.user_id,
                key=key_text,
                body=payload,
                events=events,
                verify_user=row is MISS,
            )
        except ProblemError as problem:
            return _problem(problem)
        except Exception as exc:
            handler = _handler_for(self.fastapi_app, exc)
            if handler is None:
                raise
            return _Handled(handler, exc)
        return order_response(outcome)

    def _orders_route(self) -> Any:
        """The route this layer stands in for (its path names the request in metrics)."""
        if self._route is None:
            for route in self.fastapi_app.routes:
                if getattr(route, "path", None) == PATH and "POST" in getattr(route, "methods", ()):
                    self._route = route
                    break
        return self._route


async def _read_body(receive: Receive) -> tuple[bytes, Message | None]:
    """The whole body; with a non-body message (a disconnect) returned to replay."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), message
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), None


def _replay(body: bytes, pending: Message | None, receive: Receive) -> Receive:
    """A ``receive`` that gives the body already read, then carries on with the real one."""
    queued: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]
    if pending is not None:
        queued.append(pending)

    async def replay() -> Message:
        if queued:
            return queued.pop(0)
        return await receive()

    return replay


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return {name: value for name, value in scope["headers"]}


def _bearer(value: bytes | None) -> str | None:
    """The token of ``Authorization: Bearer …``, as OAuth2PasswordBearer reads it."""
    if value is None:
        return None
    scheme, _, token = value.decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def _problem(problem: ProblemError) -> Any:
    return problem_response(problem, _PathOnly(PATH))


class _PathOnly:
    """What :func:`problem_response` reads of a request: ``request.url.path``."""

    def __init__(self, path: str) -> None:
        self.url = self
        self.path = path


def _handler_for(app: Any, exc: Exception) -> Any:
    handlers = app.exception_handlers
    for cls in type(exc).__mro__:
        if cls in handlers:
            return handlers[cls]
    return None


class _Handled:
    """An error after the order was queued, answered by the app's own handler for it."""

    def __init__(self, handler: Any, exc: Exception) -> None:
        self.handler = handler
        self.exc = exc

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from starlette.requests import Request

        response = await self.handler(Request(scope, receive), self.exc)
        await response(scope, receive, send)
