"""Replace files and folders so that a reader, or a process killed half-way, never sees a torn one.

A writer fills a temporary sibling and renames it into place: ``os.replace`` of a file, or of a
symlink for a folder (a folder cannot be swapped atomically, a link to it can). Temporary names
carry the writer's pid (``.<name>.<pid>.…``), so whoever writes next can tell the leftovers of
a writer that was SIGKILLed from those of one still at work, and removes only the former.

The pipeline kill drill (``tests/faults/drill_pipeline_kill.py``) is what found the torn files this
module exists for: features and model candidates saved file by file in place, ``evaluation.json``
truncated, and temporary files of killed runs left behind for good.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host (ours always does)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def temp_name(name: str, suffix: str = "tmp") -> str:
    """``.<name>.<pid>.<random>.<suffix>``: hidden, unique, and owned by this process."""
    return f".{name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.{suffix}"


def remove_stale(folder: Path, name: str, keep: Iterable[str] = ()) -> list[str]:
    """Delete ``folder``'s temporaries of ``name`` whose writer is dead; returns what went.

    ``keep`` names entries never to remove (e.g. the folder a link points at).
    """
    pattern = re.compile(rf"^\.{re.escape(name)}\.(?P<pid>\d+)\.")
    kept = set(keep)
    removed = []
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        match = pattern.match(entry.name)
        if match is None or entry.name in kept or pid_alive(int(match["pid"])):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry.name)
    return removed


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path.parent, path.name)
    tmp = path.with_name(temp_name(path.name))
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def replace_dir(target: Path, write: Callable[[Path], Any]) -> Path:
    """Fill a new folder with ``write`` and make ``target`` point at it in one step.

    ``target`` becomes a relative symlink to a hidden sibling ``.<name>.<pid>.<random>.d``;
    readers that open ``target`` see the old folder or the new one, never a mix. The folder
    it pointed at before is kept (a reader may still be inside it); older ones and the
    remains of killed writers go. A plain folder from before this layout is moved aside once.
    Returns the new folder.
    """
    parent, name = target.parent, target.name
    parent.mkdir(parents=True, exist_ok=True)
    fresh = parent / temp_name(name, "d")
    fresh.mkdir()
    try:
        write(fresh)
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        raise
    previous = os.readlink(target) if target.is_symlink() else None
    if target.is_dir() and not target.is_symlink():
        previous = temp_name(name, "d")  # the legacy folder, kept as the previous version
        os.rename(target, parent / previous)
    link = parent / temp_name(name, "link")
    os.symlink(fresh.name, link)
    os.replace(link, target)
    remove_stale(parent, name, keep=[fresh.name, *([previous] if previous else [])])
    if previous:
        for entry in parent.iterdir():  # versions older than the previous one (ours, alive)
            if entry.name.startswith(f".{name}.{os.getpid()}.") and entry.name not in (
                fresh.name,
                previous,
            ):
                shutil.rmtree(entry, ignore_errors=True)
    return fresh
