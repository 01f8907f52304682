"""Versioned index directories with checksummed manifests and an atomic ``CURRENT`` pointer.

Kept deliberately small so it can later be folded into the generic ``models.registry`` artifact
API: same idea (immutable version dir, ``manifest.json`` with sha256 per file, pointer swapped
with ``os.replace``, rollback, refuse corrupt at load).

Layout::

    root/
      CURRENT                  # name of the served version (one line)
      versions/<version>/      # index files + manifest.json
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from models.search.errors import IndexCorruptError

MANIFEST = "manifest.json"
POINTER = "CURRENT"
LOCK = ".version.lock"
TURNSTILE = ".turnstile.lock"
_SKIP_SUFFIXES = (".lock",)


@contextlib.contextmanager
def version_lock(directory: Path, *, exclusive: bool) -> Iterator[None]:
    """Hold a version directory's lock: shared to verify and open it, exclusive to change it.

    A served version is edited in place by the catalog sync (tantivy rewrites ``meta.json``
    and ``.managed.json``, then the manifest is re-checksummed), and other processes verify
    and open that same directory (the search reload loop of every worker, a pipeline run).
    Without a lock a reader checksummed files between tantivy's write and the new manifest
    and refused the version: "checksum mismatch for index/.managed.json". ``flock`` locks
    belong to an open file, so this works between threads as well as processes, and the
    kernel drops them when a holder dies.

    ``flock`` favours nobody, so readers that keep overlapping would starve an editor; a
    second lock is a turnstile: an editor holds it while it waits, and a reader passes it
    (takes and drops it) before taking its shared lock. A folder this process may not write
    to (a read-only mount) has no editor to wait for, so it is read without a lock.
    """
    with contextlib.ExitStack() as files:
        try:
            turnstile = files.enter_context(open(directory / TURNSTILE, "a"))
            handle = files.enter_context(open(directory / LOCK, "a"))
        except OSError:
            turnstile = handle = None
        if handle is not None and turnstile is not None:
            fcntl.flock(turnstile.fileno(), fcntl.LOCK_EX)
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            finally:
                fcntl.flock(turnstile.fileno(), fcntl.LOCK_UN)
        yield  # closing the files (ExitStack) releases the lock


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _payload_files(directory: Path) -> list[Path]:
    return sorted(
        p
        for p in directory.rglob("*")
        if p.is_file()
        and p.name != MANIFEST
        and not p.name.endswith(_SKIP_SUFFIXES)
        and not p.name.startswith(".tantivy")
    )


def write_manifest(directory: Path, doc_count: int, fields: list[str], **extra: object) -> dict:
    """Checksum every file in ``directory`` and write ``manifest.json`` (last, atomically)."""
    files = {str(p.relative_to(directory)): _sha256(p) for p in _payload_files(directory)}
    manifest = {
        "version": directory.name,
        "doc_count": doc_count,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "fields": fields,
        "files": files,
        **extra,
    }
    tmp = directory / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, directory / MANIFEST)
    return manifest


def verify(directory: Path, *, lock: bool = True) -> dict:
    """Return the manifest if every listed file exists with its checksum, else raise.

    Holds the version's shared lock (unless the caller already does, ``lock=False``), so an
    in-place edit is seen whole or not at all.
    """
    if lock:
        with version_lock(directory, exclusive=False):
            return verify(directory, lock=False)
    path = directory / MANIFEST
    if not path.exists():
        raise IndexCorruptError(f"{directory} has no {MANIFEST}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        files: dict[str, str] = manifest["files"]
    except (ValueError, KeyError) as exc:
        raise IndexCorruptError(f"unreadable manifest in {directory}") from exc
    for name, expected in files.items():
        file = directory / name
        if not file.exists():
            raise IndexCorruptError(f"{directory}: missing {name}")
        if _sha256(file) != expected:
            raise IndexCorruptError(f"{directory}: checksum mismatch for {name}")
    return manifest


@dataclass(slots=True)
class IndexStore:
    """All index versions under one root, and which one is served."""

    root: Path

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        (self.root / "versions").mkdir(parents=True, exist_ok=True)

    def new_version_dir(self) -> Path:
        """A fresh, empty directory named by UTC time (sortable) for the next build."""
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        base = self.root / "versions" / stamp
        n = 0
        while True:  # mkdir is the claim: two builds in one second never share a folder
            candidate = base if n == 0 else base.with_name(f"{stamp}-{n}")
            try:
                candidate.mkdir(parents=True)
            except FileExistsError:
                n += 1
                continue
            return candidate

    def versions(self) -> list[str]:
        """Published-or-not versions that have a manifest, oldest first."""
        vdir = self.root / "versions"
        return sorted(p.name for p in vdir.iterdir() if (p / MANIFEST).exists())

    def current(self) -> str | None:
        """The version the pointer names, or None before the first publish."""
        pointer = self.root / POINTER
        return pointer.read_text(encoding="utf-8").strip() or None if pointer.exists() else None

    def path(self, version: str) -> Path:
        """Directory of one version."""
        return self.root / "versions" / version

    def publish(self, version: str) -> None:
        """Verify ``version`` then atomically point ``CURRENT`` at it."""
        verify(self.path(version))
        tmp = self.root / f".{POINTER}.tmp"
        tmp.write_text(version + "\n", encoding="utf-8")
        os.replace(tmp, self.root / POINTER)

    def rollback(self) -> str:
        """Point ``CURRENT`` at the newest valid version older than the current one."""
        current = self.current()
        older = [v for v in self.versions() if current is None or v < current]
        for version in reversed(older):
            try:
                self.publish(version)
            except IndexCorruptError:
                continue
            return version
        raise IndexCorruptError("no valid older version to roll back to")
