"""Fixtures for the event log tests; makes the repository importable without installing it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from serving.eventlog import EventLog  # noqa: E402
from tests.distributed.services import clean_stream, nats_url, stream_name  # noqa: E402, F401


@pytest.fixture
def events_dir(tmp_path: Path) -> Path:
    path = tmp_path / "events"
    path.mkdir()
    return path


@pytest.fixture
def event_log(events_dir: Path) -> Iterator[EventLog]:
    log = EventLog(events_dir)
    yield log
    log.close()
