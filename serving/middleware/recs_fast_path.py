"""``GET /api/v1/recommendations/users/{id}`` straight to the recommendation service.

Why (issue 21): once the candidates are cached, a personal list costs the service about as
much CPU as FastAPI's own share of the request: the path is matched against the routers
before it, eight parameters and three dependencies are solved and validated one by one, and
the exception, exit-stack and routing layers each wrap the call. At 1,000 requests/s on one
worker that share alone is a third of a core.

Like ``checkout_fast_path.py`` this layer sits inside every middleware of ours (request id,
access log and metrics, load shedding, body limit, rate limit, CORS), so those still see the
request, and it takes only the usual case: a user id and at most ``k`` and ``surface`` in the
query, each valid as the route would take it, and a bearer token that verifies for a caller not
known to be gone. It then calls what
the route calls (``personal.for_user`` and ``answer_json``). Anything else, and any refusal the
service raises (401, 403), goes on to the app untouched, so every error is the route's own,
rendered by the app's handlers. It imports no route: both stand on the recommendation service.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from prometheus_client import Counter
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from serving.api.schemas.common import MAX_DB_INT
from serving.components import components_of
from serving.core.errors import ProblemError
from serving.middleware.checkout_fast_path import bearer, find_route
from serving.services.ml.recs import personal
from serving.services.ml.recs.answer import SURFACES, answer_json
from serving.services.shop.caller_cache import MISS

PREFIX = "/api/v1/recommendations/users/"
ROUTE_PATH = PREFIX + "{user_id}"
_MAX_K = 100  # the route's ``K``: 1 <= k <= 100

HANDLED = Counter(
    "storeloop_recs_fast_path_total",
    "GET /api/v1/recommendations/users/{id} by who answered: here, or passed on to the route",
    ["outcome"],
)
_ANSWERED = HANDLED.labels("answered")
_PASSED_ON = HANDLED.labels("passed_on")


class RecsFastPath:
    """Answers the usual personal recommendation request itself; passes everything else on."""

    def __init__(self, app: ASGIApp, *, fastapi_app: Any) -> None:
        self.app = app
        self.fastapi_app = fastapi_app
        self._route: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or not scope["path"].startswith(PREFIX)
        ):
            await self.app(scope, receive, send)
            return
        body = await self._answer(scope)
        if body is None:
            _PASSED_ON.inc()
            await self.app(scope, receive, send)
            return
        _ANSWERED.inc()
        await Response(body, media_type="application/json")(scope, receive, send)

    async def _answer(self, scope: Scope) -> bytes | None:
        """The answer's JSON, or None to let the app handle the request."""
        user_id = _user_id(scope["path"])
        query = _query(scope["query_string"])
        if user_id is None or query is None:
            return None
        k, surface = query
        token = session_id = None
        for name, value in scope["headers"]:
            if name == b"authorization" and token is None:
                token = bearer(value)
            elif name == b"x-session-id" and session_id is None:
                session_id = value.decode("latin-1")
        state = components_of(self.fastapi_app)
        recs = state.recs
        if token is None or recs is None:
            return None
        try:  # what ``deps.get_caller`` does; a refusal is the route's to answer
            caller_id = state.tokens.verify(token).user_id
            row = state.callers.peek(token)
            if row is not MISS and (row is None or not row.is_active):
                return None
            items, strategy, version = await personal.for_user(
                recs,
                caller_id=caller_id,
                user_id=user_id,
                session_id=session_id,
                k=k,
                category=None,
                exclude=[],
            )
        except ProblemError:
            return None
        request_state = scope.setdefault("state", {})
        request_state["user_id"] = caller_id
        scope["route"] = self._users_route()  # names the request in metrics and the log
        return answer_json(recs, items, strategy, version, surface)

    def _users_route(self) -> Any:
        if self._route is None:
            self._route = find_route(self.fastapi_app.routes, ROUTE_PATH, "GET")
        return self._route


def _user_id(path: str) -> int | None:
    """The path's user id when the route would take it (digits, 1 to MAX_DB_INT)."""
    tail = path[len(PREFIX) :]
    if not (tail.isascii() and tail.isdigit()) or len(tail) > 10:
        return None
    user_id = int(tail)
    return user_id if 1 <= user_id <= MAX_DB_INT else None


def _query(raw: bytes) -> tuple[int, str] | None:
    """(k, surface) when the query holds nothing else, each at most once and valid."""
    k, surface = 10, "home"
    seen: set[str] = set()
    for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        if name in seen:
            return None
        seen.add(name)
        if name == "k" and value.isascii() and value.isdigit() and len(value) <= 3:
            k = int(value)
            if not 1 <= k <= _MAX_K:
                return None
        elif name == "surface" and value in SURFACES:
            surface = value
        else:
            return None
    return k, surface
