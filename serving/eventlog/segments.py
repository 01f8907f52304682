"""Segment files: naming, opening under a lock, closing, and recovering dead writers' files.

Why a lock: several worker processes (and hosts sharing a local disk) write to one directory.
Each writer holds an exclusive ``flock`` on its ``.open`` segment for the segment's whole life;
the kernel drops the lock when the process dies, however it dies. So "can I take the lock?" is
an exact test for "is the owner dead?", with no pid files and no pid-reuse mistakes.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import secrets
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from features.events import CLOSED_SUFFIX, OPEN_SUFFIX

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9_.]+")
#: Closed segments are made read-only, a second guard against ever appending to them.
CLOSED_MODE = 0o444


def fsync_dir(directory: Path) -> None:
    """Persist directory entries (a new file, a rename) so a crash cannot lose the file."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class SegmentNamer:
    """Makes unique segment names: ``<utc-open-time>-<host>-<pid>-<token>-<seq>``.

    The leading UTC time sorts segments roughly by age; host, pid and a random per-writer token
    make names unique across processes, restarts and several writers in one process.
    """

    host: str
    pid: int
    token: str
    seq: int = 0

    @classmethod
    def for_this_process(cls) -> SegmentNamer:
        host = _UNSAFE.sub("_", socket.gethostname()) or "host"
        return cls(host=host, pid=os.getpid(), token=secrets.token_hex(4))

    def next_stem(self, wall_time: float) -> str:
        self.seq += 1
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(wall_time))
        return f"{stamp}-{self.host}-{self.pid}-{self.token}-{self.seq:06d}"


class OpenSegment:
    """A segment this process appends to; locked from creation until it is closed."""

    def __init__(self, directory: Path, stem: str, opened_at: float) -> None:
        self.directory = directory
        self.stem = stem
        self.opened_at = opened_at  # time.monotonic() at creation, for age-based rotation
        self.path = directory / f"{stem}{OPEN_SUFFIX}"
        self.size = 0
        # Create and lock the file under a name recoverers never look at, then rename it into
        # place: another process's recovery can then never see an ``.open`` file that is not
        # yet locked and mistake it for one left by a dead writer.
        creating = directory / f".{stem}.creating"
        self.fd = os.open(creating, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
            os.rename(creating, self.path)
            fsync_dir(directory)
        except BaseException:
            os.close(self.fd)
            with contextlib.suppress(OSError):
                os.unlink(creating)
            raise

    @property
    def closed_path(self) -> Path:
        return self.directory / f"{self.stem}{CLOSED_SUFFIX}"

    def write(self, data: bytes) -> None:
        """Write all of ``data``; on failure cut the file back so no partial line remains."""
        view = memoryview(data)
        written = 0
        try:
            while written < len(view):
                written += os.write(self.fd, view[written:])
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, self.size)
            raise
        self.size += written

    def sync(self) -> None:
        os.fdatasync(self.fd)

    def close(self) -> Path | None:
        """Make the segment durable and immutable; returns its closed path (None if empty).

        The rename happens while we still hold the lock, so no recoverer can see a
        half-closed file; an empty segment is removed rather than published.
        """
        try:
            os.fsync(self.fd)
            if self.size == 0:
                os.unlink(self.path)
                fsync_dir(self.directory)
                return None
            os.fchmod(self.fd, CLOSED_MODE)
            os.rename(self.path, self.closed_path)
            fsync_dir(self.directory)
            return self.closed_path
        finally:
            os.close(self.fd)  # releases the lock


def recover_stale_segments(directory: Path) -> list[Path]:
    """Close every ``.open`` segment whose writer is dead; returns the segments it closed.

    A dead writer may have left a torn last line (a crash mid-write); everything after the last
    newline was never acknowledged, so it is cut off before the segment is closed. Segments of
    live writers are skipped because their lock cannot be taken.
    """
    closed: list[Path] = []
    for path in sorted(directory.glob(f"*{OPEN_SUFFIX}")):
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            continue  # closed by its owner or another recoverer meanwhile
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its writer is alive
            try:
                if os.stat(path).st_ino != os.fstat(fd).st_ino:
                    continue  # renamed away by someone else before we locked it
            except FileNotFoundError:
                continue
            result = _close_stale(fd, path)
            if result is not None:
                closed.append(result)
        finally:
            os.close(fd)
    if closed:
        fsync_dir(directory)
    return closed


def _close_stale(fd: int, path: Path) -> Path | None:
    """Truncate a torn tail, then publish the segment (or delete it if nothing is left)."""
    size = os.fstat(fd).st_size
    keep = _complete_prefix_length(fd, size)
    if keep != size:
        log.warning("event segment %s: cutting a torn tail of %d bytes", path.name, size - keep)
        os.ftruncate(fd, keep)
    os.fsync(fd)
    if keep == 0:
        os.unlink(path)
        return None
    os.fchmod(fd, CLOSED_MODE)
    target = path.with_suffix(CLOSED_SUFFIX)
    os.rename(path, target)
    log.info("event segment %s: closed after its writer died", target.name)
    return target


def _complete_prefix_length(fd: int, size: int, chunk: int = 64 * 1024) -> int:
    """Length of the file up to and including its last newline (0 if it has none)."""
    end = size
    while end > 0:
        start = max(0, end - chunk)
        block = os.pread(fd, end - start, start)
        index = block.rfind(b"\n")
        if index >= 0:
            return start + index + 1
        end = start
    return 0
