"""Exception handlers that render every error as RFC 9457 problem+json.

One place decides how errors look, so a client never has to parse two error shapes, and no
stack trace or framework debug page ever reaches a client.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from serving.core.errors import PROBLEM_JSON, ProblemError

log = logging.getLogger("storeloop.errors")


def problem_response(problem: ProblemError, request: Request | None = None) -> Response:
    instance = request.url.path if request is not None else None
    headers = dict(problem.headers)
    return Response(
        orjson.dumps(problem.to_dict(instance)),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _validation_problem(exc: RequestValidationError) -> ProblemError:
    errors: list[dict[str, Any]] = []
    malformed = False
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            malformed = True
        errors.append(
            {
                "loc": [str(p) for p in err.get("loc", ())],
                "msg": str(err.get("msg", "")),
                "type": str(err.get("type", "")),
            }
        )
    if malformed:
        return ProblemError(
            400, "Malformed JSON", "The request body is not valid JSON", errors=errors
        )
    return ProblemError(
        422, "Validation failed", "The request does not match the expected shape", errors=errors
    )


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> Response:
        return problem_response(exc, request)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return problem_response(_validation_problem(exc), request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        problem = ProblemError(exc.status_code, detail=str(exc.detail) if exc.detail else None)
        problem.headers.update(getattr(exc, "headers", None) or {})
        return problem_response(problem, request)

    @app.exception_handler(OperationalError)
    @app.exception_handler(PoolTimeout)
    async def _db_down(request: Request, exc: Exception) -> Response:
        log.warning("database unavailable: %s", exc.__class__.__name__)
        problem = ProblemError(
            503,
            "Service Unavailable",
            "The database is unavailable; retry shortly",
            headers={"Retry-After": "2"},
        )
        return problem_response(problem, request)

    @app.exception_handler(DataError)
    async def _bad_value(request: Request, exc: DataError) -> Response:
        # A value the column cannot hold (overflow, bad encoding) is the client's input.
        return problem_response(
            ProblemError(422, "Unprocessable Content", "A value is out of range"), request
        )

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> Response:
        log.info("integrity error: %s", exc.orig)
        return problem_response(
            ProblemError(409, "Conflict", "The change conflicts with existing data"), request
        )

    @app.exception_handler(DBAPIError)
    async def _db_error(request: Request, exc: DBAPIError) -> Response:
        if exc.connection_invalidated:
            return await _db_down(request, exc)
        log.exception("database error")
        return problem_response(ProblemError(500, detail="Internal error"), request)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error")
        return problem_response(ProblemError(500, detail="Internal error"), request)
