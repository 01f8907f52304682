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

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from models.search.errors import IndexCorruptError

MANIFEST = "manifest.json"
POINTER = "CURRENT"
_SKIP_SUFFIXES = (".lock",)


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


def verify(directory: Path) -> dict:
    """Return the manifest if every listed file exists with its checksum, else raise."""
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
        candidate, n = base, 1
        while candidate.exists():
            candidate = base.with_name(f"{stamp}-{n}")
            n += 1
        candidate.mkdir(parents=True)
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
