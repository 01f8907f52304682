"""Can this process still write where it keeps its data? A real write, not a permission guess.

``os.access`` says yes to root on a read-only mount and knows nothing of a full disk, so the
probe writes a small file, flushes it to the device and removes it: exactly what the event log,
SQLite and the registry need to work. Used by ``/readyz`` (a full disk takes the process out of
the load balancer) and by ``storeloop serve`` before it starts (a read-only data directory is one
clear line and a non-zero exit, not a traceback after "serving on").
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

from serving.core.config import Settings

PROBE_BYTES = 4096  # one block: a full device refuses it, a nearly full one still accepts it


def probe_dir(path: Path) -> str | None:
    """None if a file can be written, synced and removed in ``path``; else why not."""
    probe = path / f".write-probe-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"\0" * PROBE_BYTES)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        return f"{path}: {exc.strerror or exc}"
    finally:
        with contextlib.suppress(OSError):
            probe.unlink(missing_ok=True)
    return None


def data_dirs(settings: Settings) -> list[Path]:
    """The folders the shop writes to: DATA_DIR's standard ones and a SQLite database's own."""
    layout = settings.layout
    dirs = [layout.root, layout.events, layout.registry]
    if settings.is_sqlite and settings.database_url is not None:
        database = settings.sqlalchemy_url.removeprefix("sqlite:///")
        if database and database != ":memory:":
            dirs.append(Path(database).parent)
    return dirs


def unwritable(settings: Settings) -> list[str]:
    """Why each of the shop's folders cannot be written to (empty: all writable)."""
    problems = []
    for path in data_dirs(settings):
        reason = probe_dir(path) if path.is_dir() else f"{path}: no such directory"
        if reason:
            problems.append(reason)
    return problems
