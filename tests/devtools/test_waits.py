"""The suite's waits stretch with a setting and the machine's load, and name what timed out."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from devtools import waits


def test_scale_setting_multiplies_deadlines(monkeypatch):
    monkeypatch.setenv(waits.TIME_SCALE_ENV, "3")
    assert waits.scaled(10) == pytest.approx(30 * waits.load_factor())
    monkeypatch.setenv(waits.TIME_SCALE_ENV, "0.1")  # never below the base deadline
    assert waits.scaled(10) >= 10
    monkeypatch.setenv(waits.TIME_SCALE_ENV, "fast")
    with pytest.raises(ValueError, match="STORELOOP_TEST_TIME_SCALE"):
        waits.scaled(1)


def test_load_stretches_deadlines(monkeypatch):
    monkeypatch.delenv(waits.TIME_SCALE_ENV, raising=False)
    cores = os.cpu_count() or 1
    monkeypatch.setattr(os, "getloadavg", lambda: (10.0 * cores, 0.0, 0.0))
    assert waits.scaled(30) == pytest.approx(300)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.1, 0.0, 0.0))
    assert waits.scaled(30) == pytest.approx(30)


def test_timeout_names_what_was_waited_for(monkeypatch):
    monkeypatch.setenv(waits.TIME_SCALE_ENV, "1")
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    with pytest.raises(TimeoutError) as err:
        waits.wait_until(lambda: False, timeout=0.05, what="the widget to appear", interval=0.01)
    message = str(err.value)
    assert "the widget to appear" in message and "STORELOOP_TEST_TIME_SCALE" in message


def test_a_dead_process_fails_at_once_naming_the_wait():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="the server to listen.*exited"):
        waits.wait_until(
            lambda: False,
            timeout=600,
            what="the server to listen",
            alive=lambda: proc.poll() is None,
        )
    assert time.monotonic() - start < 600


def test_pytest_timeouts_are_scaled():
    """pytest-timeout's limit is stretched by the same factor (tests/conftest.py)."""
    from tests.conftest import _scale_timeouts

    class Item:
        def __init__(self):
            self.markers = []

        def get_closest_marker(self, name):
            return next((m for m in self.markers if m.name == name), None)

        def add_marker(self, marker, append=True):
            mark = getattr(marker, "mark", marker)
            self.markers.insert(0 if not append else len(self.markers), mark)

    class Config:
        def getoption(self, name, default=None):
            return None

        def getini(self, name):
            return "300"

    item = Item()
    os.environ[waits.TIME_SCALE_ENV] = "2"
    try:
        _scale_timeouts(Config(), [item])
    finally:
        del os.environ[waits.TIME_SCALE_ENV]
    assert item.get_closest_marker("timeout").args[0] >= 600


def test_no_wait_in_the_suite_has_a_fixed_deadline():
    """Regression (issue 18): waits written as ``time.monotonic() + 300`` ignored the setting
    and the load ("the Dagster webserver did not start", a lock "never freed" under load).
    Every deadline the suite and its helpers compute from ``time.monotonic()`` goes through
    ``scaled``; the one exception is a drill's deliberate kill delay, which is not a wait."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    not_waits = {"tests/faults/drill_pipeline_kill.py"}  # when to SIGKILL, not how long to wait
    pattern = re.compile(r"deadline = time\.monotonic\(\) \+ (?!scaled\()")
    fixed = [
        f"{path.relative_to(root)}:{number}"
        for folder in ("tests", "devtools")
        for path in sorted((root / folder).rglob("*.py"))
        if str(path.relative_to(root)) not in not_waits
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert fixed == [], f"unscaled deadlines (use devtools.waits.scaled): {fixed}"
