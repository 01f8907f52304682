"""Server-side domain events of a request (order placed, paid, cancelled …) into the event log.

Here, not in ``serving/api/deps.py``, so that the checkout's fast-path middleware and the
routes build the same sink without the middleware importing the API's dependencies.
"""

from __future__ import annotations

import logging
from typing import Any

from serving.core.clock import utcnow
from serving.eventlog.records import server_record


class EventSink:
    """Writes server-side domain events into the clickstream log (no-op without one).

    Events are queued for the log's next group commit without waiting for the fsync: the state
    change is already committed in the database, which stays the source of truth, so a request
    should not pay the log's latency, and a failing log write never turns it into an error.
    Timestamps come from the injected clock, so simulated shoppers' events carry simulated time.
    """

    def __init__(self, request: Any = None, *, log: Any = None, request_id: Any = None):
        if request is not None:
            log = request.app.state.components.event_log
            request_id = getattr(request.state, "request_id", None)
        self._log = log
        self._request_id = request_id

    def emit(self, event_type: str, **fields: Any) -> None:
        self.emit_many([(event_type, fields)])

    @property
    def log(self) -> Any:
        """The event log these events go to (None without one)."""
        return self._log

    def records(self, event_type: str, **fields: Any) -> dict[str, Any]:
        """One event as a stored record, for a caller that submits many requests' events to
        :attr:`log` together (the checkout batch: one hand-over to the writer per batch)."""
        when = utcnow().timestamp()
        return server_record(event_type, when, **{"request_id": self._request_id, **fields})

    def emit_many(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        if self._log is None or not events:
            return
        try:
            when = utcnow().timestamp()
            records = [
                server_record(event_type, when, **{"request_id": self._request_id, **fields})
                for event_type, fields in events
            ]
            self._log.submit(records).add_done_callback(_report_failure)
        except Exception:
            _events_log.exception("could not log %s", events[0][0])


_events_log = logging.getLogger("storeloop.events")


def _report_failure(future: Any) -> None:
    if future.exception() is not None:
        _events_log.error("event log write failed: %s", future.exception())
