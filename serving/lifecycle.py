"""Start and stop the app's long-lived parts (event log, model loaders, checkout loops).

``create_app`` passes the one explicit list of starters; nothing registers itself by being
imported. A starter takes the :class:`~serving.components.Components`, fills in what it
started and may return a stopper (plain or async); stoppers run in reverse order.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence

from serving.components import Components, Stopper
from serving.db.checkpoint import WalCheckpointer
from serving.eventlog import EventLog
from serving.services.ml.catalog_view import CategoryIndex, ProductInfoCache
from serving.services.ml.recs import RecsServing
from serving.services.ml.search_events import SearchEvents
from serving.services.ml.search_serving import SearchServing

log = logging.getLogger("storeloop.lifecycle")

Starter = Callable[[Components], Stopper | None]


def start_event_log(c: Components) -> Stopper:
    """The clickstream log on ``DATA_DIR/events`` (before anything that writes events)."""
    c.event_log = EventLog.from_settings(c.settings)
    return c.event_log.close


def start_wal_checkpoints(c: Components) -> Stopper | None:
    """SQLite on a file: checkpoint the WAL in the background so it never grows unbounded."""
    db = c.db
    if not db.is_sqlite or db.engine.url.database in (None, "", ":memory:"):
        return None
    checkpointer = WalCheckpointer(db.engine, c.settings.sqlite_checkpoint_seconds)
    checkpointer.start()
    c.wal_checkpointer = checkpointer
    return checkpointer.stop


def shared_catalog(c: Components) -> tuple[CategoryIndex, ProductInfoCache]:
    """The category index and product-info cache that search and recommendations share.

    One cache per app means a product fetched for a search result is not fetched again for the
    carousel next to it within the same second.
    """
    if c.product_info is None or c.category_index is None:
        c.product_info = ProductInfoCache(c.db.engine, c.settings.live_data_seconds)
        c.category_index = CategoryIndex(c.db.engine)
    return c.category_index, c.product_info


def start_search(c: Components) -> Callable[[], None]:
    """Starter: open or build the index, start the reload and sync threads."""
    categories, products = shared_catalog(c)
    serving = SearchServing(c.settings, c.db.engine, categories, products)
    c.search = serving
    events = SearchEvents(c.event_log) if c.event_log is not None else None
    c.search_events = events
    serving.start()

    def stop() -> None:
        if events is not None:
            events.flush()  # before the event log (started earlier) closes
        serving.stop()

    return stop


def start_recs(c: Components) -> Callable[[], None]:
    """Starter: load the serving model, start following the registry."""
    c.category_index, c.product_info = shared_catalog(c)
    recs = RecsServing(c.settings, c.db.engine, c.category_index, c.product_info)
    c.recs = recs
    recs.start()
    return recs.stop


async def start_components(c: Components, starters: Sequence[Starter]) -> None:
    """Run ``starters`` in order, keeping their stoppers on ``c``."""
    c.stoppers = []
    for starter in starters:
        result = starter(c)
        if inspect.isawaitable(result):
            result = await result
        if result is not None:
            c.stoppers.append(result)


async def stop_components(c: Components) -> None:
    """Stop in reverse order (a failing stopper does not keep the rest running), then the pool."""
    for stop in reversed(c.stoppers):
        try:
            result = stop()
            if inspect.isawaitable(result):
                await result
        except Exception:  # keep stopping the rest
            log.exception("error while stopping a component")
    c.db.dispose()
