"""The event log's shared-stream sink against the real NATS JetStream server (EVENTS_URL).

An append returns only once the stream stored its lines; a host SIGKILLed mid-traffic loses no
acknowledged event; a publish the stream refuses fails its caller (503 at the route) instead of
being acknowledged.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.core.config import Settings
from serving.eventlog import EventLog, EventLogError
from serving.eventlog.stream import EventStream
from tests.distributed.services import _delete_stream, read_stream, stream_lines
from tests.eventlog.eventlog_helpers import closed_files, make_records, open_files

ROOT = Path(__file__).resolve().parents[2]


def _ids(lines: list[bytes]) -> list[str]:
    return [orjson.loads(line)["event_id"] for line in lines]


def test_append_returns_once_the_stream_stored_the_lines(
    nats_url: str, clean_stream: str, events_dir: Path
) -> None:
    records = make_records(30)
    with EventLog(
        events_dir, stream=EventStream(nats_url, clean_stream), local_segments=False
    ) as log:
        log.append(records[:10])
        assert _ids(stream_lines(nats_url, clean_stream)) == [r["event_id"] for r in records[:10]]
        log.append(records[10:])
        assert log.events_written == 30
    assert _ids(stream_lines(nats_url, clean_stream)) == [r["event_id"] for r in records]
    assert closed_files(events_dir) == [] and open_files(events_dir) == [], "stream only"


def test_stream_and_local_segments_both_hold_every_event(
    nats_url: str, clean_stream: str, events_dir: Path
) -> None:
    records = make_records(5)
    with EventLog(events_dir, stream=EventStream(nats_url, clean_stream)) as log:
        log.append(records)
    assert _ids(stream_lines(nats_url, clean_stream)) == [r["event_id"] for r in records]
    [segment] = closed_files(events_dir)
    assert _ids(segment.read_bytes().splitlines()) == [r["event_id"] for r in records]


def test_lines_bigger_than_a_message_are_split_at_line_ends(
    nats_url: str, clean_stream: str, events_dir: Path
) -> None:
    stream = EventStream(nats_url, clean_stream)
    stream._max_payload = 2_000  # the server's is 1 MB; a small one makes the split visible
    records = make_records(60)
    with EventLog(events_dir, stream=stream, local_segments=False) as log:
        log.append(records)
    messages = read_stream(nats_url, clean_stream)
    assert len(messages) > 1
    assert all(len(m) <= 2_000 and m.endswith(b"\n") for m in messages)
    assert _ids(stream_lines(nats_url, clean_stream)) == [r["event_id"] for r in records]


def test_a_publish_the_stream_refuses_is_not_acknowledged(
    nats_url: str, clean_stream: str, events_dir: Path
) -> None:
    with EventLog(
        events_dir,
        stream=EventStream(nats_url, clean_stream, publish_timeout=1.0),
        local_segments=False,
    ) as log:
        log.append(make_records(1))
        asyncio.run(_delete_stream(nats_url, clean_stream))  # nothing stores the subject now
        with pytest.raises(EventLogError, match="could not publish"):
            log.append(make_records(3))
        assert log.events_written == 1
        assert log.stats.stream_errors == 1


def test_route_acknowledges_through_the_stream(
    nats_url: str, clean_stream: str, tmp_path: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        rate_limit_enabled=False,
        events_url=nats_url,
        events_stream=clean_stream,
    )
    batch = [
        {
            "event_id": str(i) * 8 + "-0000-4000-8000-" + str(i) * 12,
            "type": "product_view",
            "client_ts": "2026-01-02T03:04:05Z",
            "product_id": 17,
        }
        for i in range(1, 4)
    ]
    with TestClient(create_app(settings), headers={"X-Session-Id": "s" * 24}) as client:
        response = client.post("/api/v1/events", json={"events": batch})
        assert response.status_code == 202, response.text
    assert _ids(stream_lines(nats_url, clean_stream)) == [e["event_id"] for e in batch]
    assert list((tmp_path / "events").glob("*.jsonl")) == []


def test_route_answers_503_when_the_stream_refuses(
    nats_url: str, clean_stream: str, tmp_path: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        rate_limit_enabled=False,
        events_url=nats_url,
        events_stream=clean_stream,
        events_publish_timeout_seconds=1.0,
    )
    body = {
        "events": [
            {
                "event_id": "1" * 8 + "-0000-4000-8000-" + "1" * 12,
                "type": "product_view",
                "client_ts": "2026-01-02T03:04:05Z",
                "product_id": 17,
            }
        ]
    }
    with TestClient(create_app(settings), headers={"X-Session-Id": "s" * 24}) as client:
        asyncio.run(_delete_stream(nats_url, clean_stream))
        response = client.post("/api/v1/events", json=body)
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["retry-after"] == "1"


def test_sigkilled_writer_loses_no_acknowledged_event(
    nats_url: str, clean_stream: str, tmp_path: Path
) -> None:
    child = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("stream_writer_child.py")),
            nats_url,
            clean_stream,
            str(tmp_path / "events"),
        ],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    acknowledged: list[str] = []
    try:
        assert child.stdout is not None
        while len(acknowledged) < 400:  # 20 batches acknowledged, then kill mid-traffic
            line = child.stdout.readline()
            assert line, "the writer died before it was killed"
            acknowledged.extend(line.decode().split())
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
    acknowledged.extend(child.stdout.read().decode().split())  # printed just before the kill
    stored = _ids(stream_lines(nats_url, clean_stream))
    assert set(acknowledged) <= set(stored)
    assert len(stored) == len(set(stored)), "no event stored twice"
