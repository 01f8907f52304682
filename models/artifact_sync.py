"""Mirror a registry folder to and from object storage (S3-compatible and others, via fsspec).

Why a mirror and not the registry on the bucket itself: the registry promises that a reader
sees a whole version or none, and it keeps that promise with renames and fsync, which object
stores do not have. So hosts keep reading a local folder (``STORELOOP_REGISTRY_DIR``), and
this module copies between that folder and a URL (``s3://bucket/registry`` with s3fs, or any
fsspec URL) in the one order that keeps the promise across the copy:

* every file of every version first, each written to a temporary name and renamed into place
  (locally) or uploaded whole (object stores make an object visible only when complete);
* the pointers last (``serving.json`` of models, ``CURRENT`` of search indexes), so a reader of
  the destination never finds a pointer to a version that is not all there.

Version folders are immutable, so a file already present with the same size is skipped; small
files (manifests, pointers) are compared by content, because some are rewritten in place.

    python -m models.artifact_sync push DATA_DIR/registry s3://bucket/registry
    python -m models.artifact_sync pull s3://bucket/registry DATA_DIR/registry [--every 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

#: Files that point at a version: copied after everything they could point at.
POINTERS = frozenset({"serving.json", "CURRENT"})
#: Files up to this size are compared by content, larger ones by size.
SMALL = 1 << 20
#: Temporaries of writers that may be mid-write at the source: never copied.
_SKIP_PARTS = (".tmp", ".lock", ".creating")


@dataclass
class SyncResult:
    copied: list[str] = field(default_factory=list)
    pointers: list[str] = field(default_factory=list)
    unchanged: int = 0


def _filesystem(url: str) -> tuple[Any, str]:
    try:
        import fsspec
    except ImportError as exc:  # pragma: no cover - the extra is part of make install
        raise ImportError("artifact sync needs fsspec: pip install -e '.[distributed]'") from exc
    fs, path = fsspec.core.url_to_fs(url)
    return fs, path.rstrip("/")


def _files(fs: Any, root: str) -> dict[str, int]:
    """Relative path → size of every file under ``root`` (nothing if it does not exist).

    The listing is always fresh: s3fs (like other fsspec remote file systems) keeps a listing
    cache per instance, and answers "not found" for a file missing from a cached folder
    listing, so a ``pull --every`` loop that once listed a version folder mid-upload would
    fail on that version forever. The whole cache is dropped: dropping ``root`` alone keeps
    its sub-folders' listings.
    """
    fs.invalidate_cache()
    if not fs.exists(root):
        return {}
    out = {}
    for path, info in fs.find(root, detail=True).items():
        rel = PurePosixPath(path).relative_to(PurePosixPath(root)).as_posix()
        if info.get("type", "file") == "file" and not any(p in rel for p in _SKIP_PARTS):
            out[rel] = int(info.get("size") or 0)
    return out


def _same(src_fs: Any, src: str, dst_fs: Any, dst: str, size: int, dst_size: int | None) -> bool:
    if dst_size is None or dst_size != size:
        return False
    if size > SMALL:
        return True  # an immutable version file of the same size
    return src_fs.cat_file(src) == dst_fs.cat_file(dst)


def _put(dst_fs: Any, dst: str, data: bytes) -> None:
    """Write ``data`` whole: via a temporary and a rename on file systems that rename."""
    parent = dst.rsplit("/", 1)[0]
    dst_fs.makedirs(parent, exist_ok=True)
    from fsspec.implementations.local import LocalFileSystem

    if isinstance(dst_fs, LocalFileSystem):
        tmp = f"{parent}/.{dst.rsplit('/', 1)[1]}.{os.getpid()}.sync.tmp"
        with dst_fs.open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        dst_fs.mv(tmp, dst)
    else:
        dst_fs.pipe_file(dst, data)  # an object appears only once it is complete


def _is_pointer(rel: str) -> bool:
    return PurePosixPath(rel).name in POINTERS


def _read_pointers(fs: Any, root: str) -> dict[str, bytes]:
    """The content of every pointer under ``root`` now (one that vanished is left out)."""
    out = {}
    for rel in sorted(r for r in _files(fs, root) if _is_pointer(r)):
        try:
            out[rel] = fs.cat_file(f"{root}/{rel}")
        except FileNotFoundError:
            continue
    return out


def sync(source: str, destination: str) -> SyncResult:
    """Copy what ``destination`` lacks from ``source``: versions first, pointers last.

    The pointers are read *before* the files are listed, and those bytes are what is written
    last: the publisher writes a version's files before its pointer, so every version a
    pointer read here names is complete in the listing that follows, even when a new version
    is published while this copy runs (it is then picked up by the next one).
    """
    src_fs, src_root = _filesystem(source)
    dst_fs, dst_root = _filesystem(destination)
    pointers = _read_pointers(src_fs, src_root)
    theirs = _files(src_fs, src_root)
    ours = _files(dst_fs, dst_root)
    result = SyncResult()
    for rel in sorted(r for r in theirs if not _is_pointer(r)):
        src, dst = f"{src_root}/{rel}", f"{dst_root}/{rel}"
        if _same(src_fs, src, dst_fs, dst, theirs[rel], ours.get(rel)):
            result.unchanged += 1
            continue
        _put(dst_fs, dst, src_fs.cat_file(src))
        result.copied.append(rel)
    for rel, data in pointers.items():
        dst = f"{dst_root}/{rel}"
        if rel in ours and ours[rel] == len(data) and dst_fs.cat_file(dst) == data:
            result.unchanged += 1
            continue
        _put(dst_fs, dst, data)
        result.pointers.append(rel)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Mirror a registry to or from a URL.")
    parser.add_argument("direction", choices=("push", "pull"))
    parser.add_argument("source")
    parser.add_argument("destination")
    parser.add_argument("--every", type=float, default=0.0, help="repeat every N seconds")
    args = parser.parse_args(argv)
    while True:
        try:
            result = sync(args.source, args.destination)
        except (OSError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            if not args.every:
                return 2
        else:
            if result.copied or result.pointers or not args.every:
                print(
                    f"{args.direction}: {len(result.copied)} files, "
                    f"{len(result.pointers)} pointers copied, {result.unchanged} unchanged",
                    flush=True,
                )
        if not args.every:
            return 0
        time.sleep(args.every)


if __name__ == "__main__":
    sys.exit(main())
