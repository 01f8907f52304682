"""The schema contract in features.events: what clients may send, and what readers get."""

from __future__ import annotations

import ast
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest
from pydantic import ValidationError

import features.events as events_module
from features.events import (
    ARROW_SCHEMA,
    CLIENT_EVENT_TYPES,
    FIELDS,
    SERVER_EVENT_TYPES,
    ClientEvent,
    EventBatch,
    EventType,
    format_ts,
    read_closed_segments,
)
from serving.eventlog.records import encode_lines, server_record


def client(**overrides):
    event = {
        "event_id": str(uuid.uuid4()),
        "type": "product_view",
        "client_ts": "2026-01-02T03:04:05Z",
        "product_id": "p-1",
    }
    event.update(overrides)
    return event


def test_features_module_stays_plain_python() -> None:
    tree = ast.parse(Path(events_module.__file__).read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (
            node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")]
        )
    }
    assert not imported & {"fastapi", "starlette", "dagster", "serving"}


def test_types_split_cleanly_and_fields_match_arrow_schema() -> None:
    assert set(EventType) == CLIENT_EVENT_TYPES | SERVER_EVENT_TYPES
    assert not CLIENT_EVENT_TYPES & SERVER_EVENT_TYPES
    assert {"product_view", "search", "rec_click", "checkout_start"} <= set(CLIENT_EVENT_TYPES)
    assert {"order_placed", "stock_changed", "cart_add"} <= set(SERVER_EVENT_TYPES)
    assert tuple(ARROW_SCHEMA.names) == FIELDS


def test_valid_event_is_normalised() -> None:
    event = ClientEvent.model_validate(client(product_id=42, props={"path": "/p/42", "n": 3}))
    assert event.product_id == "42"
    assert event.type is EventType.PRODUCT_VIEW
    assert event.props == {"path": "/p/42", "n": 3}


@pytest.mark.parametrize(
    ("overrides", "error_type"),
    [
        ({"type": "order_placed"}, "server_event_type"),
        ({"type": "no_such_type"}, "enum"),
        ({"event_id": "not-a-uuid"}, "uuid_parsing"),
        ({"product_id": None}, "missing_for_type"),
        ({"type": "search_click", "search_id": "s1"}, "missing_for_type"),
        ({"surprise": 1}, "extra_forbidden"),
        ({"position": -1}, "greater_than_equal"),
        ({"props": {f"k{i}": i for i in range(21)}}, "too_long"),
        ({"props": {"nested": {"a": 1}}}, None),
        ({"product_id": "has space"}, "string_pattern_mismatch"),
    ],
)
def test_invalid_events_are_refused(overrides, error_type) -> None:
    with pytest.raises(ValidationError) as info:
        ClientEvent.model_validate(client(**overrides))
    if error_type is not None:
        assert error_type in {err["type"] for err in info.value.errors()}


def test_missing_event_id_is_refused() -> None:
    event = client()
    del event["event_id"]
    with pytest.raises(ValidationError):
        ClientEvent.model_validate(event)


def test_batch_count_limit_comes_from_context() -> None:
    body = orjson.dumps({"events": [client() for _ in range(3)]})
    assert len(EventBatch.model_validate_json(body, context={"max_count": 3}).events) == 3
    with pytest.raises(ValidationError) as info:
        EventBatch.model_validate_json(body, context={"max_count": 2})
    assert [err["type"] for err in info.value.errors()] == ["too_many_events"]


def test_format_ts_is_utc_with_microseconds() -> None:
    moment = datetime(2026, 1, 2, 5, 4, 5, 7, tzinfo=timezone(timedelta(hours=2)))
    assert format_ts(moment) == "2026-01-02T03:04:05.000007Z"
    assert format_ts(datetime(2026, 1, 2)) == "2026-01-02T00:00:00.000000Z"


def write_segment(path: Path, payload: bytes) -> None:
    path.write_bytes(payload)


def test_reader_counts_bad_lines_and_ignores_open_segments(events_dir: Path) -> None:
    good = [server_record("order_placed", 1_700_000_000.0, order_id=i) for i in range(3)]
    bad_ts = dict(good[0], event_id=str(uuid.uuid4()), server_ts="yesterday")
    payload = (
        encode_lines(good[:2])
        + b"this is not json\n"
        + b"[1, 2, 3]\n"
        + b'{"event_id": "x"}\n'
        + encode_lines([bad_ts])
        + b"\n"
        + encode_lines(good[2:])
        + b'{"event_id": "torn'
    )
    write_segment(events_dir / "a.jsonl", payload)
    write_segment(events_dir / "b.open", encode_lines(good))

    table, bad = read_closed_segments(events_dir)

    assert bad == 5
    assert table.schema == ARROW_SCHEMA
    assert table.column("event_id").to_pylist() == [r["event_id"] for r in good]
    assert table.column("server_ts")[0].as_py() == datetime.fromtimestamp(1_700_000_000, UTC)
    assert table.column("order_id").to_pylist() == ["0", "1", "2"]


def test_reader_of_missing_or_empty_directory(tmp_path: Path) -> None:
    table, bad = read_closed_segments(tmp_path / "nowhere")
    assert (table.num_rows, bad) == (0, 0)
    assert table.schema == ARROW_SCHEMA


def test_props_round_trip_as_json_text(events_dir: Path) -> None:
    record = server_record("stock_changed", 1.0, product_id=5, props={"delta": -2, "why": "sale"})
    write_segment(events_dir / "a.jsonl", encode_lines([record]))
    table, bad = read_closed_segments(events_dir)
    assert bad == 0
    assert orjson.loads(table.column("props")[0].as_py()) == {"delta": -2, "why": "sale"}
