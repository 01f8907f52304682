"""The application factory: one FastAPI app that is the shop's backend and storefront host."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from serving.api import problems
from serving.api.main import routers
from serving.components import Components
from serving.core.config import Settings
from serving.core.security import TokenService, use_fast_hashing
from serving.core.token_buckets import InProcessBuckets, RedisBuckets
from serving.db.engine import Database
from serving.lifecycle import (
    Starter,
    start_components,
    start_event_log,
    start_recs,
    start_search,
    start_wal_checkpoints,
    stop_components,
)
from serving.middleware.body_limit import BodyLimitMiddleware
from serving.middleware.checkout_fast_path import CheckoutFastPath
from serving.middleware.load_shed import LoadShedMiddleware
from serving.middleware.rate_limit import RateLimitMiddleware
from serving.middleware.recs_fast_path import RecsFastPath
from serving.middleware.request_context import RequestContextMiddleware
from serving.middleware.unstorable_text import UnstorableTextMiddleware
from serving.services.aftersales.runtime import start_aftersales
from serving.services.checkout.service import start_checkout
from serving.services.infra import event_quota
from serving.services.infra.read_cache import ReadCache
from serving.services.shop import login_throttle, review_limit
from serving.services.shop.caller_cache import CallerCache

log = logging.getLogger("storeloop")

#: What the lifespan starts, in order (stopped in reverse): the WAL checkpointer, the event log
#: before anything that writes events, search and recommendations, then checkout's webhook
#: delivery, recovery loop and outbox worker, and last the after-sales pass (sellers' parcels and
#: ledger, returns, membership renewals) with the dispute events' route into checkout's webhooks.
STARTERS: tuple[Starter, ...] = (
    start_wal_checkpoints,
    start_event_log,
    start_search,
    start_recs,
    start_checkout,
    start_aftersales,
)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; components that need I/O start in the lifespan, not here."""
    settings = settings or Settings()
    settings.ensure_dirs()
    _ = settings.payment_webhook_secret  # generated per install; production must set its own
    use_fast_hashing(settings.simulation_mode)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await start_components(components, STARTERS)
        # Everything loaded so far lives as long as the process: move it out of the cyclic
        # collector's view so full collections stop walking it (they caused latency spikes).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await stop_components(components)

    app = FastAPI(
        title="storeloop",
        version="0.1.0",
        description="The shop's backend: catalog, accounts, cart, checkout, events, "
        "search and recommendations. Errors are RFC 9457 problem+json.",
        lifespan=lifespan,
        # Both served offline by serving/api/routes/docs.py (pinned assets, a CSP).
        docs_url=None,
        redoc_url=None,
        telemetry=None
        if settings.otel_enabled
        else {"tracing": False, "metrics": False, "logs": False},
    )
    db = Database(settings.sqlalchemy_url)
    components = Components(
        settings=settings,
        db=db,
        tokens=TokenService(
            settings.jwt_secret,
            settings.jwt_algorithm,
            settings.access_token_minutes,
            cache_entries=settings.auth_token_cache_entries,
        ),
        callers=CallerCache(
            db.engine,
            seconds=settings.auth_user_cache_seconds,
            max_entries=settings.auth_user_cache_entries,
        ),
        read_cache=ReadCache(settings.read_cache_entries, settings.read_cache_seconds),
        login_throttle=login_throttle.from_settings(settings),
        review_limiter=review_limit.from_settings(settings),
        event_quota=event_quota.from_settings(settings),
    )
    app.state.components = components
    problems.install(app)
    for router in routers:
        app.include_router(router)

    if settings.checkout_fast_path:  # innermost: every middleware below still sees checkouts
        app.add_middleware(CheckoutFastPath, fastapi_app=app)
    if settings.recs_fast_path:  # the same for personal recommendation lists (issue 21)
        app.add_middleware(RecsFastPath, fastapi_app=app)
    if settings.rate_limit_enabled:
        buckets = (
            RedisBuckets(
                settings.redis_url, settings.rate_limit_per_second, settings.rate_limit_burst
            )
            if settings.redis_url
            else InProcessBuckets(settings.rate_limit_per_second, settings.rate_limit_burst)
        )
        components.rate_buckets = buckets
        app.add_middleware(RateLimitMiddleware, buckets=buckets)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    # Outside the fast path and the rate limit: no route, fast or not, sees a NUL in its params.
    app.add_middleware(UnstorableTextMiddleware)
    if settings.cors_origins.strip():  # closed by default: no CORS headers unless configured
        origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["*"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "Idempotency-Key",
                "X-Session-Id",
                "X-Request-ID",
            ],
        )
    if settings.max_in_flight_requests > 0:
        app.add_middleware(
            LoadShedMiddleware,
            max_in_flight=settings.max_in_flight_requests,
            retry_after=settings.shed_retry_after_seconds,
        )
    app.add_middleware(RequestContextMiddleware, simulation_mode=settings.simulation_mode)
    return app
