"""Start and stop the app's long-lived components (event log, recovery loops, model loaders).

Other features register their components here by adding to ``STARTERS``; each starter gets the
app and may return an async stopper.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

log = logging.getLogger("storeloop.lifecycle")

Starter = Callable[[FastAPI], Any]


def _start_event_log(app: FastAPI) -> Callable[[], Any] | None:
    try:
        from serving.eventlog import EventLog
    except ImportError:  # the event log package is optional while it is being built
        app.state.event_log = None
        return None
    settings = app.state.settings
    event_log = EventLog.from_settings(settings)
    app.state.event_log = event_log
    return event_log.close


def _start_search(app: FastAPI) -> Callable[[], Any] | None:
    from serving.services.search_serving import start_search

    return start_search(app)


def _start_recs(app: FastAPI) -> Callable[[], Any] | None:
    from serving.services.recs_serving import start_recs

    return start_recs(app)


def _start_wal_checkpoints(app: FastAPI) -> Callable[[], Any] | None:
    db = app.state.db
    if not db.is_sqlite or db.engine.url.database in (None, "", ":memory:"):
        return None
    from serving.db.checkpoint import WalCheckpointer

    checkpointer = WalCheckpointer(db.engine, app.state.settings.sqlite_checkpoint_seconds)
    checkpointer.start()
    app.state.wal_checkpointer = checkpointer
    return checkpointer.stop


STARTERS: list[Starter] = [
    _start_wal_checkpoints,
    _start_event_log,
    _start_search,
    _start_recs,
]


async def start_components(app: FastAPI) -> None:
    stoppers: list[Callable[[], Any]] = []
    for starter in STARTERS:
        result = starter(app)
        if inspect.isawaitable(result):
            result = await result
        if result is not None:
            stoppers.append(result)
    app.state.stoppers = stoppers


async def stop_components(app: FastAPI) -> None:
    for stop in reversed(getattr(app.state, "stoppers", [])):
        try:
            result = stop()
            if inspect.isawaitable(result):
                await result
        except Exception:  # keep stopping the rest
            log.exception("error while stopping a component")
    app.state.db.dispose()
