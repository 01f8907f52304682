"""Concurrent writers: threads, processes, rotation under load and a killed writer."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import orjson
from eventlog_helpers import (
    closed_files,
    make_records,
    open_files,
    process_writer,
    wait_for,
)

from features.events import read_closed_segments
from serving.eventlog import EventLog

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def all_lines_parse(directory: Path) -> int:
    count = 0
    for path in closed_files(directory):
        data = path.read_bytes()
        assert data.endswith(b"\n")
        for line in data.splitlines():
            assert isinstance(orjson.loads(line), dict)
            count += 1
    return count


def test_threads_appending_concurrently_lose_nothing_across_rotations(events_dir: Path) -> None:
    threads, batches, per_batch = 16, 40, 20
    acked: list[list[str]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []
    log = EventLog(events_dir, segment_max_bytes=50_000)

    def worker(index: int) -> None:
        try:
            for _ in range(batches):
                records = make_records(per_batch, session_id=f"t{index}")
                log.append(records)
                acked[index].extend(r["event_id"] for r in records)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    log.close()

    assert errors == []
    expected = [event_id for ids in acked for event_id in ids]
    table, bad = read_closed_segments(events_dir)
    assert bad == 0
    assert sorted(table.column("event_id").to_pylist()) == sorted(expected)
    assert len(set(expected)) == threads * batches * per_batch
    assert all_lines_parse(events_dir) == len(expected)
    assert len(closed_files(events_dir)) > 5, "the load should have crossed several rotations"
    assert log.stats.commits < threads * batches, "appends should have been group-committed"


def test_several_processes_write_one_directory_without_losing_events(events_dir: Path) -> None:
    processes, batches, per_batch = 4, 40, 50
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes) as pool:
        results = pool.starmap(
            process_writer, [(str(events_dir), batches, per_batch, 40_000)] * processes
        )
    acked = [event_id for ids in results for event_id in ids]
    assert len(acked) == processes * batches * per_batch

    table, bad = read_closed_segments(events_dir)
    assert bad == 0
    assert sorted(table.column("event_id").to_pylist()) == sorted(acked)
    assert open_files(events_dir) == []
    writers = {path.name.split("-")[-3] for path in closed_files(events_dir)}
    assert len(writers) == processes, "each process writes its own segment files"


def test_killed_writer_loses_no_acknowledged_event(events_dir: Path, tmp_path: Path) -> None:
    ack_path = tmp_path / "acks.txt"
    code = (
        f"import sys; sys.path[:0] = [{str(ROOT)!r}, {str(HERE)!r}]\n"
        "from eventlog_helpers import crashing_writer\n"
        f"crashing_writer({str(events_dir)!r}, {str(ack_path)!r})\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code])
    try:
        wait_for(
            lambda: ack_path.exists() and ack_path.read_bytes().count(b"\n") >= 60,
            timeout=60,
            what="the child to acknowledge batches",
        )
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    acked = [
        event_id
        for line in ack_path.read_text().splitlines(keepends=True)
        if line.endswith("\n")
        for event_id in line.split()
    ]
    EventLog(events_dir).close()  # start-up recovery of the dead writer's segment

    assert open_files(events_dir) == []
    table, bad = read_closed_segments(events_dir)
    assert bad == 0
    stored = set(table.column("event_id").to_pylist())
    assert set(acked) <= stored
