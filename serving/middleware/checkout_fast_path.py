"""``POST /api/v1/orders`` straight to the checkout batch, without FastAPI's routing.

Why: at 300 orders/s a checkout's own work is a batch's share (about 2 ms of CPU), and the
framework's share on the event loop came close to it: the route is matched against every
router before it, its five dependencies are solved one by one, the exception, exit-stack and
routing layers each wrap the call. All that time holds the worker's GIL, which the batch
thread needs to finish the orders that requests are waiting for.

This layer sits inside every middleware of ours (request id, access log and metrics, load
shedding, body limit, rate limit, CORS), so those still see the request. It takes only the
usual case: a JSON body that ``OrderCreate`` accepts, a bearer token that verifies, an
Idempotency-Key, a card the batch can charge. It then calls what the route calls
(:func:`serving.services.checkout.service.place`, with the same caller check, and
``order_response``), only for the batched case. Anything else, before the order is queued,
goes on to the app with the body replayed, so every error is the route's own error, rendered
by the app's handlers. It imports no route: both stand on the checkout service.
"""

from __future__ import annotations

from typing import Any

import orjson
from prometheus_client import Counter
from pydantic import ValidationError
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.api.schemas.orders import OrderCreate
from serving.components import components_of
from serving.core.errors import ProblemError
from serving.eventlog.sink import EventSink
from serving.services.checkout import service as checkout
from serving.services.checkout.idempotency import MAX_KEY_LENGTH
from serving.services.checkout.service import PATH

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
        state = components_of(self.fastapi_app)
        rt = checkout.runtime(self.fastapi_app)
        if checkout.batcher(rt) is None:
            return None
        headers = _headers(scope)
        token = bearer(headers.get(b"authorization"))
        key = headers.get(b"idempotency-key")
        if token is None or key is None or headers.get(b"content-type") not in _JSON_TYPES:
            return None
        try:
            key_text = key.decode("latin-1")
            payload = OrderCreate.model_validate(orjson.loads(raw)).model_dump(mode="json")
            caller = checkout.checkout_caller(state.tokens, state.callers, token)
        except (ValueError, ValidationError, ProblemError):
            return None  # the route answers (a 401 too)
        if len(key_text) > MAX_KEY_LENGTH or not key_text.strip():
            return None
        request_state = scope.setdefault("state", {})
        events = EventSink(log=state.event_log, request_id=request_state.get("request_id"))
        answer: Any
        try:
            outcome = await checkout.place(
                rt, caller=caller, key=key_text, body=payload, events=events, batched_only=True
            )
        except ProblemError as problem:
            answer = checkout.problem_response(problem)
        except Exception as exc:
            answer = _handler_for(self.fastapi_app, exc)
            if answer is None:
                self._name_request(scope, caller.user_id)
                raise
            answer = _Handled(answer, exc)
        else:
            if outcome is None:
                return None  # not for the batch: the route places it
            answer = checkout.order_response(outcome)
        self._name_request(scope, caller.user_id)
        return answer

    def _name_request(self, scope: Scope, user_id: int) -> None:
        """Who placed it and which route this layer stood in for, for metrics and the log."""
        scope.setdefault("state", {})["user_id"] = user_id
        scope["route"] = self._orders_route()

    def _orders_route(self) -> Any:
        """The route this layer stands in for (its path names the request in metrics and the
        access log; without it a placed order counted as ``route="unmatched"``)."""
        if self._route is None:
            self._route = find_route(self.fastapi_app.routes, PATH, "POST")
        return self._route


def find_route(routes: Any, path: str, method: str) -> Any:
    """The route serving ``method path``, looking into included routers too (FastAPI keeps
    them as one entry each, whose candidates wrap the routes as declared)."""
    for route in routes:
        candidates = getattr(route, "effective_candidates", None)
        if candidates is not None:
            found = find_route(candidates(), path, method)
            if found is not None:
                return found
            continue
        route = getattr(route, "original_route", route)
        if getattr(route, "path", None) == path and method in (
            getattr(route, "methods", None) or ()
        ):
            return route
    return None


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


def bearer(value: bytes | None) -> str | None:
    """The token of ``Authorization: Bearer …``, as OAuth2PasswordBearer reads it."""
    if value is None:
        return None
    scheme, _, token = value.decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    return token


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
        response = await self.handler(Request(scope, receive), self.exc)
        await response(scope, receive, send)
