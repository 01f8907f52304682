"""POST /api/v1/events: clients' clickstream batches into the durable event log.

The body is read and validated by hand rather than through a FastAPI body parameter, for two
reasons: the byte limit must hold while the body streams in (before anything is parsed), and
the count limit is a setting, not a constant in the model. A batch is all or nothing: any bad
event rejects the whole batch with problem+json and nothing is written.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ValidationError

from features.events import EventBatch, format_ts
from serving.api.deps import SessionId, TokenDep
from serving.components import components_of
from serving.core.clock import utcnow
from serving.core.errors import ProblemError
from serving.eventlog import EventLog, EventLogClosed, EventLogError, EventLogOverloaded
from serving.eventlog.records import client_records
from serving.eventlog.schema_doc import batch_request_schema
from serving.services.infra.event_quota import EventQuota
from serving.services.ml.recs import record_activity

router = APIRouter(prefix="/api/v1", tags=["events"])

DEFAULT_MAX_COUNT = 500
DEFAULT_MAX_BYTES = 1_000_000
_MAX_REPORTED_ERRORS = 20


class EventsAccepted(BaseModel):
    """How many events were made durable."""

    accepted: int


async def get_event_user_id(request: Request, token: TokenDep) -> str | None:
    """The signed-in user's id from the access token alone, without a database lookup.

    Events are the busiest endpoint and only need attribution, so a valid signature is enough;
    the shared ``OptionalUser`` would open a write session (``BEGIN IMMEDIATE`` on SQLite) per
    batch. A present but invalid token is still a 401, as everywhere else.
    """
    if token is None:
        return None
    return str(components_of(request).tokens.verify(token).user_id)


EventUserId = Annotated[str | None, Depends(get_event_user_id)]


@router.post(
    "/events",
    status_code=202,
    response_model=EventsAccepted,
    summary="Record a batch of client events",
    openapi_extra={"requestBody": batch_request_schema()},
    responses={
        400: {"description": "Body is not JSON, or X-Sim-Time is not ISO 8601"},
        413: {"description": "Too many events or too many bytes in the batch"},
        429: {"description": "This session or address used its per-minute event quota"},
        422: {"description": "An event does not match the schema; nothing was written"},
        503: {"description": "The event log cannot take writes right now; retry"},
    },
)
async def post_events(request: Request, session_id: SessionId, user_id: EventUserId) -> Any:
    """Validate the whole batch, stamp server time and request id, and return once durable."""
    settings = components_of(request).settings
    max_bytes = getattr(settings, "event_batch_max_bytes", DEFAULT_MAX_BYTES)
    max_count = getattr(settings, "event_batch_max_count", DEFAULT_MAX_COUNT)
    simulation = bool(getattr(settings, "simulation_mode", False))

    quota: EventQuota | None = components_of(request).event_quota
    address = request.client.host if request.client else "unknown"
    body = await _read_bounded(request, max_bytes)
    if quota is not None:
        await quota.spend_bytes(len(body), session_id=session_id, address=address)
    batch = _parse_batch(body, max_count)
    if quota is not None:
        await quota.spend_events(len(batch.events), session_id=session_id, address=address)
    records = client_records(
        batch.events,
        server_ts=_server_ts(request, simulation),
        request_id=getattr(request.state, "request_id", None),
        session_id=session_id,
        user_id=user_id,
        trust_client_user=simulation,
    )
    event_log: EventLog | None = components_of(request).event_log
    if event_log is None:
        raise _unavailable("The event log is not running")
    try:
        await event_log.append_async(records)
    except EventLogOverloaded as exc:
        raise _unavailable(str(exc)) from exc
    except EventLogClosed as exc:
        raise _unavailable("The server is shutting down") from exc
    except EventLogError as exc:
        raise _unavailable("The events could not be stored") from exc
    record_activity(components_of(request).recs, records)
    return {"accepted": len(records)}


def _too_large(detail: str) -> ProblemError:
    return ProblemError(413, "Content Too Large", detail)


def _unavailable(detail: str) -> ProblemError:
    return ProblemError(503, "Service Unavailable", detail, headers={"Retry-After": "1"})


async def _read_bounded(request: Request, max_bytes: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed ``max_bytes``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(f"An event batch may hold at most {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(f"An event batch may hold at most {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_batch(body: bytes, max_count: int) -> EventBatch:
    """Parse and validate in one pass (pydantic-core reads the JSON itself)."""
    try:
        return EventBatch.model_validate_json(body, context={"max_count": max_count})
    except ValidationError as exc:
        raise _batch_problem(exc, max_count) from None


def _batch_problem(exc: ValidationError, max_count: int) -> ProblemError:
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    kinds = {err["type"] for err in errors}
    if "json_invalid" in kinds:
        return ProblemError(400, "Malformed JSON", "The request body is not valid JSON")
    if "too_many_events" in kinds:
        return _too_large(f"An event batch may hold at most {max_count} events")
    reported = [
        {"loc": [str(part) for part in err["loc"]], "msg": err["msg"], "type": err["type"]}
        for err in errors[:_MAX_REPORTED_ERRORS]
    ]
    return ProblemError(
        422,
        "Invalid event batch",
        f"{len(errors)} problem(s) in the batch; no event was stored",
        errors=reported,
    )


def _server_ts(request: Request, simulation: bool) -> str:
    """Server time for the batch; in simulation mode ``X-Sim-Time`` is the simulator's clock.

    Outside simulation mode the header is ignored, so clients cannot back-date events.
    """
    raw = request.headers.get("x-sim-time") if simulation else None
    if raw is None:
        moment = utcnow()
    else:
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            raise ProblemError(400, "Bad X-Sim-Time", "X-Sim-Time must be ISO 8601") from None
    return format_ts(moment)
