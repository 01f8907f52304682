"""Every long-lived part of one app, typed and in one place.

``create_app`` builds a :class:`Components` once and keeps it as ``app.state.components``; the
routes read it through ``api/deps.py`` and the starters (``serving/lifecycle.py``) fill in the
parts that need I/O at start-up. One typed object instead of a bag of ``app.state``
attributes means a reader sees at a glance what an app holds, a type checker sees what each
part is, and a typo is an ``AttributeError`` rather than a silent ``getattr(..., None)``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import HTTPConnection

from serving.core.config import Settings
from serving.core.security import TokenService
from serving.core.token_buckets import InProcessBuckets, RedisBuckets
from serving.db.engine import Database
from serving.services.infra.event_quota import EventQuota
from serving.services.infra.read_cache import ReadCache
from serving.services.shop.caller_cache import CallerCache
from serving.services.shop.login_throttle import LoginThrottle
from serving.services.shop.review_limit import ReviewLimiter

if TYPE_CHECKING:  # the heavy parts are imported by their starters, not by every importer
    from serving.db.checkpoint import WalCheckpointer
    from serving.eventlog import EventLog
    from serving.services.aftersales.runtime import AftersalesRuntime
    from serving.services.checkout import CheckoutRuntime
    from serving.services.ml.catalog_view import CategoryIndex, ProductInfoCache
    from serving.services.ml.recs import RecsServing
    from serving.services.ml.search_events import SearchEvents
    from serving.services.ml.search_serving import SearchServing

#: A starter's result: called at shutdown, may be async.
Stopper = Callable[[], Any]


@dataclass(eq=False)
class Components:
    """The app's parts. The first group is built by ``create_app``; the rest by starters."""

    settings: Settings
    db: Database
    tokens: TokenService
    callers: CallerCache
    read_cache: ReadCache
    login_throttle: LoginThrottle
    review_limiter: ReviewLimiter
    event_quota: EventQuota | None
    rate_buckets: InProcessBuckets | RedisBuckets | None = None  # when rate limiting is on
    # Started in the lifespan (None until then, and in an app whose lifespan never ran):
    event_log: EventLog | None = None
    wal_checkpointer: WalCheckpointer | None = None
    category_index: CategoryIndex | None = None  # shared by search and recommendations
    product_info: ProductInfoCache | None = None
    search: SearchServing | None = None
    search_events: SearchEvents | None = None
    recs: RecsServing | None = None
    checkout: CheckoutRuntime | None = None
    aftersales: AftersalesRuntime | None = None  # disputes, returns, renewals, sellers' pass
    checkout_slots: asyncio.Semaphore | None = None  # made inside the serving event loop
    stoppers: list[Stopper] = field(default_factory=list)


def components_of(where: Starlette | HTTPConnection) -> Components:
    """The components of an app, or of the app serving a request (anything with ``.app``)."""
    app = where if isinstance(where, Starlette) else where.app
    return app.state.components
