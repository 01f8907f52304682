"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from serving.db.migrate import schema_status

router = APIRouter(tags=["operations"])

EVENTS_WRITTEN = Gauge(
    "storeloop_events_written", "Events written to the event log by this process"
)


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Database reachable and schema current",
    responses={503: {"description": "Not ready; the body says why"}},
)
async def readyz(request: Request) -> Response:
    db = request.app.state.db
    try:
        status = await run_in_threadpool(schema_status, db.engine)
    except Exception as exc:  # unreachable database: say so, quickly
        return JSONResponse(
            {"ready": False, "database": "unreachable", "reason": exc.__class__.__name__},
            status_code=503,
        )
    body = {"ready": status.is_current, "database": "ok", "schema": status.describe()}
    return JSONResponse(body, status_code=200 if status.is_current else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    event_log = getattr(request.app.state, "event_log", None)
    if event_log is not None:
        EVENTS_WRITTEN.set(getattr(event_log, "events_written", 0))
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
