"""The lake consumes the shared event stream: durable consumer, idempotent, by event time.

Events are published the way API hosts publish them (``EventLog`` with an ``EventStream``
sink) to a stream of this test on the real NATS server; the raw layer lands them and extracts
each UTC day. A landing pass SIGKILLed before its ack makes the server deliver the batch again,
and the lake still holds every event exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import dagster as dg
import orjson
import pyarrow.parquet as pq
import pytest

from devtools.waits import scaled
from features.lake import partition_path
from pipelines.assets.raw import raw_events
from pipelines.automation import closed_segments_sensor
from pipelines.event_stream import land_stream, pending_messages
from pipelines.resources import EventLogDir, LakeDir, build_resources
from serving.eventlog import EventLog
from serving.eventlog.records import server_record
from serving.eventlog.stream import EventStream
from tests.distributed.services import stream_lines

ROOT = Path(__file__).resolve().parents[2]
DAY1, DAY2 = "2026-11-20", "2026-11-21"


def _publish(url: str, stream: str, tmp_path: Path, per_day: int = 40) -> dict[str, list[str]]:
    """Events on two UTC days, as two API hosts would publish them; ids by day."""
    by_day: dict[str, list[str]] = {DAY1: [], DAY2: []}
    for host in ("a", "b"):
        with EventLog(
            tmp_path / f"host_{host}", stream=EventStream(url, stream), local_segments=False
        ) as log:
            for day, ids in by_day.items():
                wall = datetime.fromisoformat(
                    f"{day}T23:59:00+00:00" if day == DAY1 else f"{day}T00:00:30+00:00"
                ).timestamp()
                records = [
                    server_record("cart_add", wall, session_id=f"{host}{i}", product_id=i)
                    for i in range(per_day // 2)
                ]
                log.append(records)
                ids.extend(r["event_id"] for r in records)
    return by_day


def _materialize(data_dir: Path, url: str, stream: str, day: str) -> dg.ExecuteInProcessResult:
    resources = build_resources(
        data_dir, f"sqlite:///{data_dir / 'shop.db'}", events_url=url, events_stream=stream
    )
    return dg.materialize([raw_events], resources=resources, partition_key=day)


def _lake_ids(data_dir: Path, day: str) -> list[str]:
    return pq.read_table(partition_path(data_dir / "lake", "events", day))["event_id"].to_pylist()


def test_raw_events_land_the_stream_and_partition_by_event_time(
    nats_url: str, clean_stream: str, tmp_path: Path
) -> None:
    published = _publish(nats_url, clean_stream, tmp_path)
    data_dir = tmp_path / "lake_host"
    result = _materialize(data_dir, nats_url, clean_stream, DAY1)
    [mat] = result.asset_materializations_for_node("raw_events")
    assert mat.metadata["stream_messages_landed"].value == 4
    assert sorted(_lake_ids(data_dir, DAY1)) == sorted(published[DAY1])
    second = _materialize(data_dir, nats_url, clean_stream, DAY2)
    [mat2] = second.asset_materializations_for_node("raw_events")
    assert mat2.metadata["stream_messages_landed"].value == 0, "the consumer remembers"
    assert sorted(_lake_ids(data_dir, DAY2)) == sorted(published[DAY2])
    assert pending_messages(nats_url, clean_stream) == 0


@pytest.mark.parametrize("point", ["renamed", "writing"])
def test_landing_killed_before_its_ack_never_duplicates_a_row(
    nats_url: str, clean_stream: str, tmp_path: Path, point: str
) -> None:
    published = _publish(nats_url, clean_stream, tmp_path)
    data_dir = tmp_path / "lake_host"
    events_dir = data_dir / "events"
    events_dir.mkdir(parents=True)
    ack_wait = 2.0
    child = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tests/distributed/land_child.py"),
            nats_url,
            clean_stream,
            str(events_dir),
            point,
            str(ack_wait),
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        check=False,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    landed_before = sorted(p.name for p in events_dir.glob("*.jsonl"))
    assert len(landed_before) == (1 if point == "renamed" else 0)
    # The server delivers the unacknowledged batch again once ack_wait has passed.
    deadline = time.monotonic() + scaled(30 * ack_wait)
    redelivered = 0
    while time.monotonic() < deadline:
        result = land_stream(nats_url, events_dir, stream=clean_stream)
        redelivered += result.redelivered
        if pending_messages(nats_url, clean_stream) == 0 and redelivered:
            break
        time.sleep(ack_wait / 4)
    assert redelivered == 4
    lines = [line for p in events_dir.glob("*.jsonl") for line in p.read_bytes().splitlines()]
    expected = len(stream_lines(nats_url, clean_stream)) * (2 if point == "renamed" else 1)
    assert len(lines) == expected, "the killed pass's batch landed twice (before and after)"
    for day in (DAY1, DAY2):
        assert _materialize(data_dir, nats_url, clean_stream, day).success
        ids = _lake_ids(data_dir, day)
        assert sorted(ids) == sorted(published[day]), "every event exactly once"


def test_sensor_lands_the_stream_and_requests_its_days(
    nats_url: str, clean_stream: str, tmp_path: Path
) -> None:
    _publish(nats_url, clean_stream, tmp_path)
    events = EventLogDir(path=str(tmp_path / "events"), stream_url=nats_url, stream=clean_stream)
    lake = LakeDir(path=str(tmp_path / "lake"))  # nothing extracted yet: every day is new
    with dg.build_sensor_context(resources={"events": events, "lake": lake}) as ctx:
        first = closed_segments_sensor(ctx)
    assert sorted(r.partition_key for r in first.run_requests) == [DAY1, DAY2]
    resources = {"events": events, "lake": lake}
    with dg.build_sensor_context(resources=resources, cursor=first.cursor) as ctx:
        assert isinstance(closed_segments_sensor(ctx), dg.SkipReason)
    assert [orjson.loads(x)["type"] for x in stream_lines(nats_url, clean_stream)][:1] == [
        "cart_add"
    ]
