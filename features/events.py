"""The event schema contract shared by the shop's event log writer and the pipelines.

One module owns the shape of an event so that the writer (``serving.eventlog``) and every
reader (Dagster assets, notebooks) cannot drift apart: the type enum, the field list, the
pydantic model that validates client batches, the pyarrow schema readers get, and the reader
of closed segments itself. It is plain Python (pydantic, orjson, pyarrow) on purpose:
``features/`` must stay importable without fastapi, dagster or the serving package.

On-disk format (see docs/events.md): JSON Lines, one orjson-encoded object per line, in
segment files under ``DATA_DIR/events/``. A segment being written ends in ``.open``; a closed
segment ends in ``.jsonl`` and is immutable. Readers only ever look at ``.jsonl`` files.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Final
from uuid import UUID

import orjson
import pyarrow as pa
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

__all__ = [
    "ARROW_SCHEMA",
    "CLIENT_EVENT_TYPES",
    "CLOSED_SUFFIX",
    "FIELDS",
    "OPEN_SUFFIX",
    "REQUIRED_FIELDS",
    "SERVER_EVENT_TYPES",
    "ClientEvent",
    "EventBatch",
    "EventType",
    "ReadResult",
    "format_ts",
    "iter_segment_records",
    "list_closed_segments",
    "read_closed_segments",
]

#: Suffix of the one segment a writer process is appending to.
OPEN_SUFFIX: Final = ".open"
#: Suffix of a closed, immutable segment; the only files readers consume.
CLOSED_SUFFIX: Final = ".jsonl"


class EventType(enum.StrEnum):
    """Every event type the log may hold; client and server types never overlap."""

    # Client (browser / app) events, posted to POST /api/v1/events.
    PRODUCT_VIEW = "product_view"
    SEARCH = "search"
    SEARCH_CLICK = "search_click"
    REC_IMPRESSION = "rec_impression"
    REC_CLICK = "rec_click"
    ADD_TO_CART = "add_to_cart"
    REMOVE_FROM_CART = "remove_from_cart"
    CATEGORY_VIEW = "category_view"
    PAGE_VIEW = "page_view"
    CHECKOUT_START = "checkout_start"
    # Server domain events, written by the shop itself via EventLog.emit().
    USER_REGISTERED = "user_registered"
    USER_LOGIN = "user_login"
    ORDER_PLACED = "order_placed"
    ORDER_PAID = "order_paid"
    ORDER_CANCELLED = "order_cancelled"
    ORDER_SHIPPED = "order_shipped"
    ORDER_DELIVERED = "order_delivered"
    REVIEW_POSTED = "review_posted"
    STOCK_CHANGED = "stock_changed"
    PRICE_CHANGED = "price_changed"
    CART_ADD = "cart_add"
    CART_REMOVE = "cart_remove"
    PRODUCT_CREATED = "product_created"
    PRODUCT_UPDATED = "product_updated"
    # Marketplace, membership and after-sales facts (serving/services/{marketplace,membership,
    # aftersales}); their tables are extracted to the lake as well.
    SELLER_REGISTERED = "seller_registered"
    SELLER_PARCEL_SHIPPED = "seller_parcel_shipped"
    SELLER_PAYOUT = "seller_payout"
    MEMBERSHIP_STARTED = "membership_started"
    MEMBERSHIP_RENEWED = "membership_renewed"
    MEMBERSHIP_RENEWAL_FAILED = "membership_renewal_failed"
    MEMBERSHIP_CANCEL_REQUESTED = "membership_cancel_requested"
    MEMBERSHIP_ENDED = "membership_ended"
    RETURN_REQUESTED = "return_requested"
    RETURN_AUTHORIZED = "return_authorized"
    RETURN_REJECTED = "return_rejected"
    RETURN_REFUNDED = "return_refunded"
    DISPUTE_OPENED = "dispute_opened"
    DISPUTE_CLOSED = "dispute_closed"
    WISHLIST_ADD = "wishlist_add"
    WISHLIST_REMOVE = "wishlist_remove"
    PROMOTION_APPLIED = "promotion_applied"


CLIENT_EVENT_TYPES: Final[frozenset[EventType]] = frozenset(
    {
        EventType.PRODUCT_VIEW,
        EventType.SEARCH,
        EventType.SEARCH_CLICK,
        EventType.REC_IMPRESSION,
        EventType.REC_CLICK,
        EventType.ADD_TO_CART,
        EventType.REMOVE_FROM_CART,
        EventType.CATEGORY_VIEW,
        EventType.PAGE_VIEW,
        EventType.CHECKOUT_START,
    }
)
SERVER_EVENT_TYPES: Final[frozenset[EventType]] = frozenset(EventType) - CLIENT_EVENT_TYPES

#: Fields of a stored event, in column order. ``source`` is "client" or "server".
FIELDS: Final[tuple[str, ...]] = (
    "event_id",
    "type",
    "source",
    "user_id",
    "session_id",
    "product_id",
    "category_id",
    "order_id",
    "query",
    "position",
    "search_id",
    "rec_id",
    "client_ts",
    "server_ts",
    "request_id",
    "props",
)

#: Fields a client event of a given type must carry (beyond event_id, type, client_ts).
#: Rejecting incomplete events at the door keeps click-through joins in the pipelines exact.
REQUIRED_FIELDS: Final[dict[EventType, tuple[str, ...]]] = {
    EventType.PRODUCT_VIEW: ("product_id",),
    EventType.SEARCH: ("query",),
    EventType.SEARCH_CLICK: ("search_id", "product_id", "position"),
    EventType.REC_IMPRESSION: ("rec_id", "product_id", "position"),
    EventType.REC_CLICK: ("rec_id", "product_id"),
    EventType.ADD_TO_CART: ("product_id",),
    EventType.REMOVE_FROM_CART: ("product_id",),
    EventType.CATEGORY_VIEW: ("category_id",),
}

#: Limits on the optional ``props`` dict, so one client cannot bloat the log.
PROPS_MAX_KEYS: Final = 20
PROPS_MAX_KEY_LEN: Final = 64
PROPS_MAX_STR_LEN: Final = 512

_ID_PATTERN: Final = re.compile(r"^[A-Za-z0-9_.:\-]+$")

#: Columns as readers see them. Timestamps are UTC microseconds; ``props`` stays a JSON string
#: because its keys vary per event type and a JSON column is what DuckDB and pandas handle best.
ARROW_SCHEMA: Final = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("type", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("user_id", pa.string()),
        pa.field("session_id", pa.string()),
        pa.field("product_id", pa.string()),
        pa.field("category_id", pa.string()),
        pa.field("order_id", pa.string()),
        pa.field("query", pa.string()),
        pa.field("position", pa.int32()),
        pa.field("search_id", pa.string()),
        pa.field("rec_id", pa.string()),
        pa.field("client_ts", pa.timestamp("us", tz="UTC")),
        pa.field("server_ts", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("request_id", pa.string()),
        pa.field("props", pa.string()),
    ]
)


def format_ts(moment: datetime) -> str:
    """Render a timestamp the one way the log stores it: UTC, microseconds, trailing ``Z``.

    A single fixed format keeps lines byte-comparable and lets Arrow cast them without guessing.
    Naive datetimes are taken to be UTC.
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _id_to_str(value: Any) -> Any:
    """Accept integer ids from clients but store every id as text, so columns have one type."""
    if isinstance(value, bool):
        return value  # let the str validator reject it
    if isinstance(value, int):
        return str(value)
    return value


_ID_JSON_SCHEMA: Final = {
    "anyOf": [
        {"type": "string", "minLength": 1, "maxLength": 128, "pattern": _ID_PATTERN.pattern},
        {"type": "integer"},
    ]
}
Identifier = Annotated[
    str,
    BeforeValidator(_id_to_str),
    Field(min_length=1, max_length=128, pattern=_ID_PATTERN.pattern),
    WithJsonSchema(_ID_JSON_SCHEMA),
]
#: Prop values are scalars; integers are bounded to 64 bits so every value can be encoded.
PropValue = (
    Annotated[str, Field(max_length=PROPS_MAX_STR_LEN)]
    | Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
    | Annotated[float, Field(allow_inf_nan=False)]
    | bool
    | None
)


def _too_many_events(count: int, limit: int) -> PydanticCustomError:
    return PydanticCustomError(
        "too_many_events",
        "batch holds {count} events, the limit is {limit}",
        {"count": count, "limit": limit},
    )


def _non_null(prop: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [alt for alt in prop["anyOf"] if alt != {"type": "null"}]}


def _client_event_schema_extra(schema: dict[str, Any]) -> None:
    """Spell the per-type required fields in the JSON schema too (``if``/``then``), so the
    OpenAPI document and schema-driven tests know exactly which events are acceptable."""
    rules = []
    for event_type, names in REQUIRED_FIELDS.items():
        properties = schema["properties"]
        rules.append(
            {
                "if": {"properties": {"type": {"const": event_type.value}}},
                "then": {
                    "required": list(names),
                    "properties": {name: _non_null(properties[name]) for name in names},
                },
            }
        )
    schema["allOf"] = rules


_CLIENT_TYPE_JSON_SCHEMA: Final = {
    "type": "string",
    "enum": sorted(t.value for t in CLIENT_EVENT_TYPES),
    "description": "A client event type; server domain types are refused.",
}


class ClientEvent(BaseModel):
    """One event as a browser or app sends it; unknown fields are refused to surface typos."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_extra=_client_event_schema_extra
    )

    event_id: UUID = Field(description="Client-made UUID; pipelines de-duplicate on it.")
    type: Annotated[EventType, WithJsonSchema(_CLIENT_TYPE_JSON_SCHEMA)]
    client_ts: datetime = Field(description="Client clock; naive values are taken as UTC.")
    user_id: Identifier | None = None
    session_id: Identifier | None = None
    product_id: Identifier | None = None
    category_id: Identifier | None = None
    order_id: Identifier | None = None
    query: Annotated[str, Field(min_length=1, max_length=512)] | None = None
    position: Annotated[int, Field(ge=0, le=10_000)] | None = None
    search_id: Identifier | None = None
    rec_id: Identifier | None = None
    props: dict[Annotated[str, Field(min_length=1, max_length=PROPS_MAX_KEY_LEN)], PropValue] = (
        Field(default_factory=dict, max_length=PROPS_MAX_KEYS)
    )

    @field_validator("type")
    @classmethod
    def _client_type_only(cls, value: EventType) -> EventType:
        """Server domain events are the shop's own word; clients may not forge them."""
        if value not in CLIENT_EVENT_TYPES:
            raise PydanticCustomError(
                "server_event_type", "{type} is a server event type", {"type": str(value)}
            )
        return value

    @model_validator(mode="after")
    def _required_for_type(self) -> ClientEvent:
        needed = REQUIRED_FIELDS.get(self.type, ())
        missing = [name for name in needed if getattr(self, name) is None]
        if missing:
            raise PydanticCustomError(
                "missing_for_type",
                "{type} events need {missing}",
                {"type": str(self.type), "missing": ", ".join(missing)},
            )
        return self


class EventBatch(BaseModel):
    """The body of POST /api/v1/events: ``{"events": [...]}``.

    The count limit is configurable, so it comes from the validation context
    (``context={"max_count": n}``) and is checked before any event is validated; the error type
    ``too_many_events`` lets the route answer 413 instead of 422.
    """

    model_config = ConfigDict(extra="forbid")

    events: list[ClientEvent] = Field(min_length=1)

    @field_validator("events", mode="before")
    @classmethod
    def _bounded_count(cls, value: Any, info: ValidationInfo) -> Any:
        limit = (info.context or {}).get("max_count")
        if limit is not None and isinstance(value, list) and len(value) > limit:
            raise _too_many_events(len(value), limit)
        return value


# --------------------------------------------------------------------------------------------
# Reading closed segments
# --------------------------------------------------------------------------------------------

_STRING_FIELDS: Final = tuple(
    f.name for f in ARROW_SCHEMA if pa.types.is_string(f.type) and f.name != "props"
)
_NOT_NULL: Final = ("event_id", "type", "source", "server_ts")


@dataclass(frozen=True)
class ReadResult:
    """What a reader got: the events as a table, and how many lines it had to skip."""

    table: pa.Table
    bad_lines: int

    def __iter__(self) -> Iterator[Any]:
        """Unpack as ``table, bad_lines = read_closed_segments(...)``."""
        return iter((self.table, self.bad_lines))


def list_closed_segments(events_dir: Path | str) -> list[Path]:
    """Closed segments in name order (names start with their UTC open time)."""
    directory = Path(events_dir)
    if not directory.is_dir():
        return []
    return sorted(directory.glob(f"*{CLOSED_SUFFIX}"))


def _clean_record(raw: Any) -> dict[str, Any] | None:
    """Return a record shaped to ARROW_SCHEMA, or None if the line is not a usable event."""
    if not isinstance(raw, dict):
        return None
    for name in _NOT_NULL:
        if not isinstance(raw.get(name), str):
            return None
    record: dict[str, Any] = {}
    for name in _STRING_FIELDS:
        value = raw.get(name)
        if value is not None and not isinstance(value, str):
            return None
        record[name] = value
    position = raw.get("position")
    if position is not None and (
        not isinstance(position, int) or isinstance(position, bool) or not 0 <= position < 2**31
    ):
        return None
    record["position"] = position
    client_ts = raw.get("client_ts")
    if client_ts is not None and not isinstance(client_ts, str):
        return None
    record["client_ts"] = client_ts
    record["server_ts"] = raw["server_ts"]
    props = raw.get("props")
    if props is not None and not isinstance(props, dict):
        return None
    record["props"] = orjson.dumps(props).decode() if props else None
    return record


def iter_segment_records(path: Path) -> Iterator[dict[str, Any] | None]:
    """Yield each line of a segment as a cleaned record, or None for a line that is unusable.

    A torn or garbled line is reported as None rather than raised, so one bad byte never stops
    a pipeline run; the caller counts them.
    """
    with open(path, "rb") as handle:
        for line in handle:
            if not line.strip():
                continue
            if not line.endswith(b"\n"):
                yield None  # a torn tail: the writer never acknowledged it
                continue
            try:
                yield _clean_record(orjson.loads(line))
            except orjson.JSONDecodeError:
                yield None


def _to_table(records: list[dict[str, Any]]) -> tuple[pa.Table, int]:
    """Build the Arrow table; timestamps that do not parse turn their whole row bad."""
    columns: dict[str, list[Any]] = {name: [r[name] for r in records] for name in FIELDS}
    arrays = []
    bad_mask: list[bool] | None = None
    for field in ARROW_SCHEMA:
        values = columns[field.name]
        if pa.types.is_timestamp(field.type):
            strings = pa.array(values, type=pa.string())
            try:
                arrays.append(strings.cast(field.type))
                continue
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                parsed, bad_mask = _parse_timestamps(values, bad_mask)
                arrays.append(pa.array(parsed, type=field.type))
                continue
        arrays.append(pa.array(values, type=field.type))
    table = pa.Table.from_arrays(arrays, schema=ARROW_SCHEMA)
    if bad_mask is None:
        return table, 0
    keep = pa.array([not bad for bad in bad_mask])
    return table.filter(keep), sum(bad_mask)


def _parse_timestamps(
    values: list[str | None], bad_mask: list[bool] | None
) -> tuple[list[datetime | None], list[bool]]:
    """Slow path, one value at a time, used only when a column holds an unparsable stamp."""
    mask = bad_mask if bad_mask is not None else [False] * len(values)
    parsed: list[datetime | None] = []
    for index, value in enumerate(values):
        if value is None:
            parsed.append(None)
            continue
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            mask[index] = True
            parsed.append(None)
            continue
        parsed.append(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    return parsed, mask


def read_closed_segments(
    events_dir: Path | str, segments: Iterable[Path] | None = None
) -> ReadResult:
    """Read closed segments into one Arrow table with ARROW_SCHEMA, plus a bad-line count.

    ``segments`` restricts the read to some closed files (e.g. those a pipeline has not seen
    yet); by default every ``*.jsonl`` under ``events_dir`` is read. ``.open`` segments are
    never read: they may still grow. Duplicated event ids are kept; de-duplicate downstream.
    Unparsable lines, lines that are not events, and a torn last line are skipped and counted.
    """
    paths = list_closed_segments(events_dir) if segments is None else sorted(segments)
    records: list[dict[str, Any]] = []
    bad = 0
    for path in paths:
        for record in iter_segment_records(Path(path)):
            if record is None:
                bad += 1
            else:
                records.append(record)
    table, bad_stamps = _to_table(records)
    return ReadResult(table=table, bad_lines=bad + bad_stamps)
