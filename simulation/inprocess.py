"""A minimal HTTP client that hands requests straight to an ASGI app in this process.

Why not ``httpx.ASGITransport``: an in-process simulation sends ~150,000 requests, and httpx
spends more CPU per request on its client machinery (URL merging, cookie jar, header models,
stream wrappers, an anyio event per response) than the shop's cheapest routes spend answering.
This client does what an ASGI server does and nothing more: one ``http`` scope per request, the
body in a single ``http.request`` message, the response collected from ``http.response.*``
messages. Every request still runs through the whole app (middleware, routing, validation,
handlers), exactly as it would behind uvicorn.

It knows nothing about the app it drives (it takes any ASGI callable), so the simulator stays a
pure HTTP client. There is no cookie jar: every shopper sends its own ``X-Session-Id``, and a
single jar shared by all simulated shoppers would be wrong anyway.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import quote, urlencode

import orjson

Scope = dict[str, Any]
Message = dict[str, Any]
AsgiApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]

_JSON = b"application/json"
_FORM = b"application/x-www-form-urlencoded"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class HTTPStatusError(RuntimeError):
    """``raise_for_status`` on a 4xx/5xx answer (the same role as httpx's exception)."""

    def __init__(self, response: Response) -> None:
        super().__init__(
            f"{response.status_code} for {response.method} {response.path}: {response.text[:200]}"
        )
        self.response = response


class Response:
    """The parts of an HTTP response the simulator reads (an httpx-compatible subset)."""

    __slots__ = ("status_code", "headers", "content", "method", "path")

    def __init__(
        self, status_code: int, headers: dict[str, str], content: bytes, method: str, path: str
    ) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content
        self.method = method
        self.path = path

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body parsed as JSON; raises ``ValueError`` (``orjson.JSONDecodeError``) if not."""
        return orjson.loads(self.content)

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            raise HTTPStatusError(self)


def _param(value: Any) -> str:
    # As httpx renders query values, so URLs (and the server's cache keys) look the same.
    if value is True:
        return "true"
    if value is False:
        return "false"
    return "" if value is None else str(value)


def encode_params(params: Mapping[str, Any] | None) -> str:
    """A query string from a mapping; list values repeat their key."""
    if not params:
        return ""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        if isinstance(value, list | tuple):
            pairs.extend((key, _param(v)) for v in value)
        else:
            pairs.append((key, _param(value)))
    return urlencode(pairs, quote_via=quote)


class AsgiClient:
    """``await client.request(method, path, json=..., params=..., headers=...)`` into ``app``.

    Application errors propagate to the caller, as with ``httpx.ASGITransport`` (whose default
    is to re-raise them). The app's lifespan is the caller's business.
    """

    def __init__(self, app: AsgiApp, *, host: str = "inprocess") -> None:
        self.app = app
        self._host = host.encode("latin-1")
        self._server = (host, 80)

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        path, _, query = path.partition("?")
        extra = encode_params(params)
        query = f"{query}&{extra}" if query and extra else query or extra
        raw_headers = [(b"host", self._host), (b"user-agent", b"storeloop-simulator")]
        body = b""
        if json is not None:
            body = orjson.dumps(json)
            raw_headers.append((b"content-type", _JSON))
        elif data is not None:
            body = urlencode(data).encode("ascii")
            raw_headers.append((b"content-type", _FORM))
        if body or method in _BODY_METHODS:
            raw_headers.append((b"content-length", str(len(body)).encode("ascii")))
        if headers:
            raw_headers.extend(
                (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()
            )
        scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode("ascii"),
            "root_path": "",
            "query_string": query.encode("ascii"),
            "headers": raw_headers,
            "client": ("127.0.0.1", 50000),
            "server": self._server,
            "extensions": {},
        }
        request_sent = False
        finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        status = 500
        response_headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []

        async def receive() -> Message:
            nonlocal request_sent
            if not request_sent:
                request_sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await finished  # the client stays connected until the response is complete
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal status, response_headers
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
                response_headers = message.get("headers") or []
            elif kind == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False) and not finished.done():
                    finished.set_result(None)

        try:
            await self.app(scope, receive, send)
        finally:
            if not finished.done():
                finished.set_result(None)
        header_map: dict[str, str] = {}
        for name, value in response_headers:
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1")
            header_map[key] = f"{header_map[key]}, {text}" if key in header_map else text
        return Response(status, header_map, b"".join(chunks), method, path)
