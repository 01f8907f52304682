"""Shared helpers for the event log tests, importable by spawned worker processes too."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any

from devtools.waits import scaled
from features.events import CLOSED_SUFFIX, OPEN_SUFFIX
from serving.eventlog import EventLog
from serving.eventlog.records import server_record


def make_records(count: int, **fields: Any) -> list[dict[str, Any]]:
    """``count`` valid server records (distinct event ids) ready for ``EventLog.append``."""
    return [server_record("cart_add", time.time(), product_id=i, **fields) for i in range(count)]


def closed_files(directory: Path) -> list[Path]:
    return sorted(directory.glob(f"*{CLOSED_SUFFIX}"))


def open_files(directory: Path) -> list[Path]:
    return sorted(directory.glob(f"*{OPEN_SUFFIX}"))


def wait_for(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``predicate`` until it holds or the deadline passes (never a bare sleep)."""
    deadline = time.monotonic() + scaled(timeout)  # devtools/waits.py
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def process_writer(
    directory: str, batches: int, per_batch: int, segment_max_bytes: int
) -> list[str]:
    """Worker process body: append batches with its own EventLog; return acknowledged ids."""
    acked: list[str] = []
    log = EventLog(directory, segment_max_bytes=segment_max_bytes)
    try:
        for _ in range(batches):
            records = make_records(per_batch, session_id=f"pid{os.getpid()}")
            log.append(records)
            acked.extend(r["event_id"] for r in records)
    finally:
        log.close()
    return acked


def crashing_writer(directory: str, ack_path: str) -> None:
    """Append forever, noting each acknowledged batch's ids; the test kills it with SIGKILL."""
    log = EventLog(directory, segment_max_bytes=20_000)
    with open(ack_path, "w", buffering=1) as acks:
        while True:
            records = make_records(25)
            log.append(records)
            acks.write(" ".join(r["event_id"] for r in records) + "\n")


def new_id() -> str:
    return str(uuid.uuid4())
