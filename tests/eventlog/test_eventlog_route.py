"""POST /api/v1/events through the real app factory: all-or-nothing batches, server stamps."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from features.events import read_closed_segments
from serving.app import create_app
from serving.core.config import Settings

URL = "/api/v1/events"
SESSION = "session-abcdefghijklmnop"


def event(**overrides: Any) -> dict[str, Any]:
    body = {
        "event_id": str(uuid.uuid4()),
        "type": "product_view",
        "client_ts": "2026-01-02T03:04:05.5+01:00",
        "product_id": 17,
    }
    body.update(overrides)
    return body


@pytest.fixture
def shop(tmp_path: Path) -> Callable[..., Any]:
    """Run the real app with some settings; yields a TestClient, then the stored table."""

    @contextmanager
    def run(**overrides: Any) -> Iterator[TestClient]:
        settings = Settings(**{"data_dir": tmp_path, "rate_limit_enabled": False, **overrides})
        with TestClient(create_app(settings), headers={"X-Session-Id": SESSION}) as client:
            yield client

    return run


def stored(tmp_path: Path) -> list[dict[str, Any]]:
    table, bad = read_closed_segments(tmp_path / "events")
    assert bad == 0
    return table.to_pylist()


def test_batch_is_stamped_and_stored(shop, tmp_path: Path) -> None:
    batch = [
        event(user_id="someone-else"),
        event(type="search", query="red shoes", search_id="s-1", product_id=None),
        event(type="rec_click", rec_id="r-9", product_id="p-3", position=2, props={"slot": "home"}),
    ]
    with shop() as client:
        response = client.post(URL, json={"events": batch})
        assert response.status_code == 202
        assert response.json() == {"accepted": 3}
        request_id = response.headers["x-request-id"]
        assert client.app.state.components.event_log.events_written == 3

    rows = stored(tmp_path)
    assert [row["event_id"] for row in rows] == [e["event_id"] for e in batch]
    for row in rows:
        assert row["source"] == "client"
        assert row["request_id"] == request_id
        assert row["session_id"] == SESSION
        assert row["user_id"] is None, "an anonymous client cannot pick a user id"
        assert abs((row["server_ts"] - datetime.now(UTC)).total_seconds()) < 3600
    assert rows[0]["client_ts"] == datetime(2026, 1, 2, 2, 4, 5, 500000, tzinfo=UTC)
    assert rows[0]["product_id"] == "17"
    assert (rows[1]["query"], rows[1]["search_id"]) == ("red shoes", "s-1")
    assert orjson.loads(rows[2]["props"]) == {"slot": "home"}


def test_signed_in_user_is_taken_from_the_token(shop, tmp_path: Path) -> None:
    with shop() as client:
        token, _ = client.app.state.components.tokens.issue(
            user_id=42, role="customer", now=datetime.now(UTC)
        )
        response = client.post(
            URL,
            json={"events": [event(user_id="7")]},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 202
        bad_token = client.post(
            URL, json={"events": [event()]}, headers={"Authorization": "Bearer nope"}
        )
        assert bad_token.status_code == 401
    assert [row["user_id"] for row in stored(tmp_path)] == ["42"]


def test_sim_time_header_is_the_clock_only_in_simulation_mode(shop, tmp_path: Path) -> None:
    sim = {"X-Sim-Time": "2030-05-06T07:08:09+00:00"}
    with shop(simulation_mode=True) as client:
        assert client.post(URL, json={"events": [event(user_id=5)]}, headers=sim).status_code == 202
        bad = client.post(URL, json={"events": [event()]}, headers={"X-Sim-Time": "soon"})
        assert bad.status_code == 400
    rows = stored(tmp_path)
    assert rows[0]["server_ts"] == datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC)
    assert rows[0]["user_id"] == "5", "the simulator speaks for its synthetic users"

    ignored = event()
    with shop(simulation_mode=False) as client:
        assert client.post(URL, json={"events": [ignored]}, headers=sim).status_code == 202
    [row] = [r for r in stored(tmp_path) if r["event_id"] == ignored["event_id"]]
    assert row["server_ts"].year != 2030


MALFORMED: list[tuple[str, Callable[[], bytes], int]] = [
    ("not json", lambda: b'{"events": [', 400),
    ("not an object", lambda: orjson.dumps([event()]), 422),
    ("no events", lambda: orjson.dumps({"events": []}), 422),
    ("unknown type", lambda: orjson.dumps({"events": [event(), event(type="nope")]}), 422),
    ("server type", lambda: orjson.dumps({"events": [event(type="order_paid")]}), 422),
    ("missing id", lambda: orjson.dumps({"events": [event(), {**event(), "event_id": None}]}), 422),
    ("missing product", lambda: orjson.dumps({"events": [event(product_id=None)]}), 422),
    ("too many events", lambda: orjson.dumps({"events": [event() for _ in range(6)]}), 413),
    ("too many bytes", lambda: orjson.dumps({"events": [event(query="q" * 500)] * 5}), 413),
]


@pytest.mark.parametrize(
    ("body", "status"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_batch_is_rejected_whole(shop, tmp_path: Path, body, status) -> None:
    with shop(event_batch_max_count=5, event_batch_max_bytes=2_000) as client:
        response = client.post(URL, content=body(), headers={"Content-Type": "application/json"})
        assert response.status_code == status
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["status"] == status
        assert client.app.state.components.event_log.events_written == 0
    assert list((tmp_path / "events").iterdir()) == []


def test_validation_problem_lists_the_errors(shop) -> None:
    with shop() as client:
        response = client.post(URL, json={"events": [event(), event(type="search")]})
    problem = response.json()
    assert response.status_code == 422
    assert problem["errors"][0]["loc"][:2] == ["events", "1"]


def test_openapi_describes_the_batch(shop) -> None:
    with shop() as client:
        spec = client.get("/openapi.json").json()
    operation = spec["paths"][URL]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["events"]
    assert "product_view" in schema["properties"]["events"]["items"]["properties"]["type"]["enum"]
    assert "202" in operation["responses"]


def _quota_shop(shop, **quota: int):
    limits = {
        "rate_limit_enabled": True,
        "rate_limit_per_second": 1000.0,
        "rate_limit_burst": 1000,
        "event_quota_session_events_per_minute": 0,
        "event_quota_session_bytes_per_minute": 0,
        "event_quota_address_events_per_minute": 0,
        "event_quota_address_bytes_per_minute": 0,
    }
    return shop(**{**limits, **quota})


def test_one_client_cannot_flood_the_event_log(shop) -> None:
    """A client posting big batches as fast as it can meets the per-address byte quota (429)."""
    batch = {"events": [event() for _ in range(100)]}
    size = len(orjson.dumps(batch))
    with _quota_shop(shop, event_quota_address_bytes_per_minute=int(size * 4.5)) as client:
        statuses = []
        for i in range(8):
            r = client.post(
                URL, content=orjson.dumps(batch), headers={"X-Session-Id": f"fresh-{i:06d}-session"}
            )
            statuses.append(r.status_code)
        assert statuses[:4] == [202] * 4
        assert 429 in statuses
        assert set(statuses[statuses.index(429) :]) == {429}
        assert r.headers["content-type"] == "application/problem+json"
        assert int(r.headers["retry-after"]) >= 1
        assert "bytes from this address" in r.json()["detail"]
        written = client.app.state.components.event_log.events_written
    assert written == 100 * statuses.count(202)


def test_event_count_quota_per_session(shop) -> None:
    with _quota_shop(shop, event_quota_session_events_per_minute=30) as client:
        batch = {"events": [event() for _ in range(10)]}
        statuses = [client.post(URL, json=batch).status_code for _ in range(4)]
        assert statuses == [202, 202, 202, 429]
        r = client.post(URL, json=batch, headers={"X-Session-Id": "another-session-0123456"})
        assert r.status_code == 202  # another session has its own budget


def test_no_quota_while_rate_limiting_is_off(shop) -> None:
    with shop(event_quota_session_events_per_minute=1) as client:
        assert client.app.state.components.event_quota is None
        batch = {"events": [event() for _ in range(10)]}
        assert [client.post(URL, json=batch).status_code for _ in range(3)] == [202] * 3
