"""The shop's append-only event log: segment files under ``DATA_DIR/events/``.

The schema lives in ``features.events`` (shared with the pipelines); this package only writes.
"""

from serving.eventlog.writer import (
    EventLog,
    EventLogClosed,
    EventLogError,
    EventLogOverloaded,
    EventLogStats,
)

__all__ = ["EventLog", "EventLogClosed", "EventLogError", "EventLogOverloaded", "EventLogStats"]
