"""RFC 9457 problem details: one exception type, one renderer.

Domain code raises :class:`ProblemError` (or a subclass); the app turns every error, including
validation failures and unknown routes, into ``application/problem+json`` with the right status.
"""

from __future__ import annotations

import math
from http import HTTPStatus
from typing import Any

PROBLEM_JSON = "application/problem+json"


class ProblemError(Exception):
    """An error the client caused or should know about, rendered as problem+json."""

    def __init__(
        self,
        status: int,
        title: str | None = None,
        detail: str | None = None,
        type_: str = "about:blank",
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        self.status = status
        self.title = title or HTTPStatus(status).phrase
        self.detail = detail
        self.type = type_
        self.headers = headers or {}
        self.extensions = extensions
        super().__init__(detail or self.title)

    def to_dict(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        if instance:
            body["instance"] = instance
        body.update(self.extensions)
        return body


class NotFound(ProblemError):
    def __init__(self, what: str, ident: object) -> None:
        super().__init__(404, "Not Found", f"{what} {ident} does not exist")


class Conflict(ProblemError):
    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(409, "Conflict", detail, **extensions)


class Unauthorized(ProblemError):
    def __init__(self, detail: str = "Not authenticated") -> None:
        super().__init__(401, "Unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(ProblemError):
    def __init__(self, detail: str = "Not allowed") -> None:
        super().__init__(403, "Forbidden", detail)


class BadRequest(ProblemError):
    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(400, "Bad Request", detail, **extensions)


class Unprocessable(ProblemError):
    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(422, "Unprocessable Content", detail, **extensions)


class TooManyRequests(ProblemError):
    """429 with ``Retry-After`` in whole seconds (at least 1), also as ``retry_after`` in the
    body; ``detail`` may say ``{seconds}``. Every limiter (logins, reviews, events) answers
    with this one shape, so a client handles them alike."""

    def __init__(self, detail: str, *, type_: str, retry_after: float) -> None:
        seconds = max(1, math.ceil(retry_after))
        super().__init__(
            429,
            "Too Many Requests",
            detail.replace("{seconds}", str(seconds)),
            type_=type_,
            headers={"Retry-After": str(seconds)},
            retry_after=seconds,
        )
