"""EventLog unit behaviour: durability, rotation, recovery, immutability of closed segments."""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
import stat
import threading
from pathlib import Path

import orjson
import pytest
from eventlog_helpers import closed_files, make_records, open_files, wait_for

from features.events import read_closed_segments
from serving.eventlog import EventLog, EventLogClosed, EventLogError, EventLogOverloaded
from serving.eventlog import segments as segments_module
from serving.eventlog.records import encode_lines


def read_ids(directory: Path) -> list[str]:
    table, bad = read_closed_segments(directory)
    assert bad == 0
    return table.column("event_id").to_pylist()


def test_append_is_on_disk_when_it_returns(event_log: EventLog, events_dir: Path) -> None:
    records = make_records(10)
    event_log.append(records)
    segment = event_log.current_segment
    assert segment is not None and segment.suffix == ".open"
    lines = segment.read_bytes().splitlines()
    assert [orjson.loads(line)["event_id"] for line in lines] == [r["event_id"] for r in records]
    assert event_log.events_written == 10
    assert event_log.bytes_written == segment.stat().st_size


def test_close_publishes_the_open_segment(events_dir: Path) -> None:
    log = EventLog(events_dir)
    records = make_records(5)
    log.append(records)
    log.close()
    assert open_files(events_dir) == []
    assert read_ids(events_dir) == [r["event_id"] for r in records]
    with pytest.raises(EventLogClosed):
        log.append(make_records(1))


def test_empty_log_leaves_no_files(events_dir: Path) -> None:
    EventLog(events_dir).close()
    assert list(events_dir.iterdir()) == []


def test_rotation_by_size_keeps_segments_bounded(events_dir: Path) -> None:
    line_size = len(encode_lines(make_records(1)))
    limit = line_size * 25
    expected: list[str] = []
    with EventLog(events_dir, segment_max_bytes=limit) as log:
        for _ in range(20):
            records = make_records(10)
            log.append(records)
            expected += [r["event_id"] for r in records]
    files = closed_files(events_dir)
    assert len(files) >= 6
    assert all(path.stat().st_size <= limit + line_size for path in files)
    assert read_ids(events_dir) == expected


def test_rotation_by_time_on_write(events_dir: Path) -> None:
    now = [1000.0]
    with EventLog(events_dir, segment_max_seconds=60, clock=lambda: now[0]) as log:
        log.append(make_records(3))
        first = log.current_segment
        now[0] += 61
        log.append(make_records(3))
        assert log.current_segment != first
        assert first is not None and not first.exists()
        assert len(closed_files(events_dir)) == 1
    assert len(closed_files(events_dir)) == 2


def test_idle_segment_is_closed_when_it_gets_old(events_dir: Path) -> None:
    with EventLog(events_dir, segment_max_seconds=0.2) as log:
        records = make_records(4)
        log.append(records)
        wait_for(lambda: not open_files(events_dir), what="the idle segment to close")
        assert read_ids(events_dir) == [r["event_id"] for r in records]


def test_stale_open_segment_is_recovered_with_torn_tail_cut(events_dir: Path) -> None:
    good = make_records(3)
    stale = events_dir / "20260101T000000Z-deadhost-1-abcd-000001.open"
    stale.write_bytes(encode_lines(good) + b'{"event_id": "half-writ')
    empty = events_dir / "20260101T000000Z-deadhost-1-abcd-000002.open"
    empty.write_bytes(b'{"torn":')

    with EventLog(events_dir) as log:
        assert log.stats.stale_segments_recovered == 1
        assert not stale.exists() and not empty.exists()
        recovered = stale.with_suffix(".jsonl")
        assert recovered.read_bytes() == encode_lines(good)
    assert read_ids(events_dir) == [r["event_id"] for r in good]


def test_segment_of_a_live_writer_is_left_alone(events_dir: Path) -> None:
    live = events_dir / "20260101T000000Z-otherhost-2-abcd-000001.open"
    live.write_bytes(b'{"partial')
    fd = os.open(live, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with EventLog(events_dir) as log:
            log.append(make_records(1))
        assert live.read_bytes() == b'{"partial'
    finally:
        os.close(fd)


def test_closed_segments_are_never_written_again(events_dir: Path) -> None:
    with EventLog(events_dir, segment_max_bytes=2_000) as log:
        for _ in range(5):
            log.append(make_records(5))
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in closed_files(events_dir)}
    assert before
    for path in closed_files(events_dir):
        assert not path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)

    with EventLog(events_dir, segment_max_bytes=2_000) as log:
        for _ in range(5):
            log.append(make_records(5))
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in closed_files(events_dir)}
    assert {name: after[name] for name in before} == before
    assert len(after) > len(before)


def test_emit_writes_a_durable_server_event(event_log: EventLog) -> None:
    record = event_log.emit("order_placed", user_id=7, order_id=99, props={"total": 12.5})
    assert record["source"] == "server"
    assert (record["user_id"], record["order_id"]) == ("7", "99")
    segment = event_log.current_segment
    assert segment is not None
    assert orjson.loads(segment.read_bytes()) == record
    with pytest.raises(ValueError):
        event_log.emit("product_view", product_id=1)
    with pytest.raises(TypeError):
        event_log.emit("order_placed", ordr_id=1)


def test_async_append_and_emit(event_log: EventLog) -> None:
    async def main() -> None:
        await event_log.append_async(make_records(2))
        await event_log.emit_async("user_registered", user_id=1)

    asyncio.run(main())
    assert event_log.events_written == 3


class _DiskFullOnSecondWrite:
    """Stands in for ``os`` inside the segments module: the second write is cut short."""

    def __init__(self) -> None:
        self.writes = 0

    def __getattr__(self, name: str):
        return getattr(os, name)

    def write(self, fd: int, data) -> int:
        self.writes += 1
        if self.writes == 2:
            os.write(fd, bytes(data[: len(data) // 2]))
            raise OSError(28, "No space left on device")
        return os.write(fd, data)


def test_failed_write_acknowledges_nothing_and_leaves_no_partial_line(
    events_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(segments_module, "os", _DiskFullOnSecondWrite())
    first, lost, last = make_records(3), make_records(3), make_records(3)
    with EventLog(events_dir) as log:
        log.append(first)
        with pytest.raises(EventLogError):
            log.append(lost)
        log.append(last)
        assert log.stats.write_errors == 1
    assert read_ids(events_dir) == [r["event_id"] for r in first + last]


def test_overload_is_refused_not_buffered_forever(
    events_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered, release = threading.Event(), threading.Event()
    real_sync = segments_module.OpenSegment.sync

    def gated_sync(self) -> None:
        entered.set()
        assert release.wait(10)
        real_sync(self)

    monkeypatch.setattr(segments_module.OpenSegment, "sync", gated_sync)
    log = EventLog(events_dir, max_pending_bytes=len(encode_lines(make_records(10))))
    try:
        in_flight = log.submit(make_records(10))
        assert entered.wait(10)
        queued = log.submit(make_records(10))
        with pytest.raises(EventLogOverloaded):
            log.submit(make_records(10))
        release.set()
        in_flight.result(10)
        queued.result(10)
    finally:
        release.set()
        log.close()
    assert len(read_ids(events_dir)) == 20
