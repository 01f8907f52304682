"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from serving.components import components_of
from serving.core.storage import unwritable
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
    summary="Database reachable and writable, schema current, data directory writable",
    responses={503: {"description": "Not ready; the body says why"}},
)
async def readyz(request: Request) -> Response:
    """Ready means able to take orders: a full disk or a read-only database is not ready.

    The storage probe writes and syncs a small file in each folder the shop writes to
    (``serving/core/storage.py``), so a full or read-only disk turns this 503 at once.
    """
    db = components_of(request).db
    try:
        status = await run_in_threadpool(schema_status, db.engine)
        read_only = await run_in_threadpool(_database_read_only, db.engine)
    except Exception as exc:  # unreachable database: say so, quickly
        return JSONResponse(
            {"ready": False, "database": "unreachable", "reason": exc.__class__.__name__},
            status_code=503,
        )
    storage = await run_in_threadpool(unwritable, components_of(request).settings)
    ready = status.is_current and not read_only and not storage
    body = {
        "ready": ready,
        "database": "read-only" if read_only else "ok",
        "schema": status.describe(),
        "storage": "ok" if not storage else {"unwritable": storage},
    }
    return JSONResponse(body, status_code=200 if ready else 503)


def _database_read_only(engine: Engine) -> bool:
    """PostgreSQL refusing writes (a standby, ``default_transaction_read_only``)."""
    if engine.dialect.name != "postgresql":
        return False  # SQLite's file is in DATA_DIR, which the storage probe covers
    with engine.connect() as conn:
        return conn.exec_driver_sql("SHOW transaction_read_only").scalar() == "on"


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    event_log = components_of(request).event_log
    if event_log is not None:
        EVENTS_WRITTEN.set(getattr(event_log, "events_written", 0))
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
