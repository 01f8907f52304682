"""Turning events into stored records and records into log lines.

Kept apart from the writer so the route and ``EventLog.emit`` build records the same way and
the writer thread only ever sees ready-made bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson

from features.events import FIELDS, SERVER_EVENT_TYPES, ClientEvent, EventType, format_ts
from serving.core import ids

_SERVER_FIELDS = frozenset(FIELDS) - {"event_id", "type", "source", "client_ts", "server_ts"}


def encode_lines(records: Iterable[dict[str, Any]]) -> bytes:
    """One compact JSON object per line. orjson escapes control characters inside strings,
    so a record can never contain a raw newline and lines cannot run into each other."""
    return b"".join(orjson.dumps(record) + b"\n" for record in records)


def client_records(
    events: Iterable[ClientEvent],
    *,
    server_ts: str,
    request_id: str | None,
    session_id: str | None,
    user_id: str | None,
    trust_client_user: bool,
) -> list[dict[str, Any]]:
    """Stored records for a validated client batch, stamped with the server's view.

    The authenticated user, when there is one, wins over whatever the client claims. A
    ``user_id`` sent by an anonymous client is kept only when ``trust_client_user`` (simulation
    mode): otherwise anyone could file events under someone else's name.
    """
    records = []
    for event in events:
        event_user = user_id
        if event_user is None and trust_client_user:
            event_user = event.user_id
        records.append(
            {
                "event_id": str(event.event_id),
                "type": event.type.value,
                "source": "client",
                "user_id": event_user,
                "session_id": event.session_id or session_id,
                "product_id": event.product_id,
                "category_id": event.category_id,
                "order_id": event.order_id,
                "query": event.query,
                "position": event.position,
                "search_id": event.search_id,
                "rec_id": event.rec_id,
                "client_ts": format_ts(event.client_ts),
                "server_ts": server_ts,
                "request_id": request_id,
                "props": event.props or None,
            }
        )
    return records


def server_record(type: str, wall_time: float, **fields: Any) -> dict[str, Any]:
    """A stored record for a server domain event such as ``order_placed``.

    Unknown keyword names raise ``TypeError`` (a typo should fail loudly, not vanish); extra
    details go in ``props``. Ids are stored as text, like client ids.
    """
    event_type = EventType(type)
    if event_type not in SERVER_EVENT_TYPES:
        raise ValueError(f"{type} is a client event type; servers emit domain events only")
    unknown = set(fields) - _SERVER_FIELDS
    if unknown:
        raise TypeError(f"unknown event fields: {', '.join(sorted(unknown))}")
    record: dict[str, Any] = dict.fromkeys(FIELDS)
    record.update(fields)
    for name in ("user_id", "session_id", "product_id", "category_id", "order_id"):
        if record[name] is not None:
            record[name] = str(record[name])
    record["props"] = record["props"] or None
    record["event_id"] = str(ids.uuid4())
    record["type"] = event_type.value
    record["source"] = "server"
    record["server_ts"] = format_ts(datetime.fromtimestamp(wall_time, UTC))
    return record
